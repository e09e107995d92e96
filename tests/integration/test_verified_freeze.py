"""Freezes accountable where the policy asks ([changes] freeze_verified): a freeze, and its early end, wait
for a fresh Entra sign-in with MFA that its person confirms on the bot's page, which names the domain, the
end and the reason; "This is not mine" changes nothing and is audited. On the sandbox's real parts: signed
commands, the Entra stand-in's sign-in pages walked as a browser would, Redis, the Samba DC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox
from kerberos_sandbox.sign_in_client import SignInWalker

from bot.services.changes.engine import ChangeEngine
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba
DOMAIN = "contoso.test"


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox")), freeze_verified=True) as up:
        yield up


def engine(box: Sandbox) -> ChangeEngine:
    changes = box.components.services.changes
    assert changes is not None
    return changes


async def link_for(box: Sandbox, text: str, user: str = "U0BOB") -> str:
    ack, replies = await box.command(text, user_id=user)
    assert ack.status == 200, ack.body
    said = json.dumps(replies)
    assert "needs a fresh Entra sign-in with MFA" in said, said
    urls = [b["accessory"]["url"] for r in replies for b in r.get("blocks", []) if "url" in b.get("accessory", {})]
    return str(urls[-1])


async def audit(box: Sandbox) -> list[Any]:
    return list(await engine(box).store.audit(f"freeze-{DOMAIN}"))


async def test_a_freeze_waits_for_a_confirmed_sign_in_and_a_declined_one_changes_nothing(box: Sandbox) -> None:
    walker = SignInWalker(box.entra.ca_file)
    link = await link_for(box, f"freeze {DOMAIN} 2d -- incident 4711 <b>bold</b>")
    assert await engine(box).holds.freeze_of(DOMAIN) is None  # nothing yet: the sign-in comes first
    asked = await walker.sign_in(link, "bob@contoso.test", decision=None)
    assert asked.title.startswith("Confirm the freeze") and DOMAIN in asked.text
    assert "incident 4711 <b>bold</b>" in asked.text  # the reason, as text

    link = await link_for(box, f"freeze {DOMAIN} 2d -- incident 4711")
    declined = await walker.sign_in(link, "bob@contoso.test", decision="decline")
    assert "Nothing was approved" in declined.text or "nothing" in declined.text.lower()
    assert await engine(box).holds.freeze_of(DOMAIN) is None
    assert any(e.event == "refused" and "not theirs" in e.detail for e in await audit(box))

    link = await link_for(box, f"freeze {DOMAIN} 2d -- incident 4711")
    frozen = await walker.sign_in(link, "bob@contoso.test", decision="approve")
    assert frozen.title.startswith("Domain frozen"), frozen.text
    freeze = await engine(box).holds.freeze_of(DOMAIN)
    assert freeze is not None and freeze.by == "U0BOB" and freeze.reason == "incident 4711"
    [entry] = [e for e in await audit(box) if e.event == "frozen"]
    assert "signed in as" in entry.detail and "bob@contoso.test" in entry.detail

    link = await link_for(box, f"thaw {DOMAIN}")
    ended = await walker.sign_in(link, "bob@contoso.test", decision="approve")
    assert ended.title.startswith("Freeze ended") and await engine(box).holds.freeze_of(DOMAIN) is None
    [thawed] = [e for e in await audit(box) if e.event == "thawed"]
    assert "bob@contoso.test" in thawed.detail


async def test_who_may_not_freeze_gets_no_sign_in_link(box: Sandbox) -> None:
    ack, replies = await box.command(f"freeze {DOMAIN} 2d -- not mine to freeze", user_id="U0MALLORY")
    said = json.dumps([ack.body, *replies])
    assert "Only members of the freeze groups" in said and "sign-in" not in said
