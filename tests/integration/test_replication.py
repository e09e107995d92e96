"""A domain served by two Samba DCs that replicate (scripts/samba-pair.sh): the bot reads the key on
each DC, reports after a rotation which DCs hold the new key and which still lag, and sees a DC whose
inbound replication is held back catch up once it is released. Real replication (drepl, kcc) between
two samba processes; shared/notes/samba-replication.md has the facts behind the set-up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from kerberos_sandbox.samba_dc import SandboxDomain, samba
from kerberos_sandbox.sandbox import Sandbox, sandbox

from bot.domain.approvals import RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.integration.test_rotate_slack import click, request_via_slack, wait_for_state
from tests.support.samba import pair_hosts

pytestmark = pytest.mark.samba

FIRST, SECOND = pair_hosts()
PAIR = SandboxDomain("contoso.test", "CONTOSO", FIRST, cloud_trust=True, replica=SECOND)
DC1, DC2 = f"ldaps://{FIRST}:636", f"ldaps://{SECOND}:636"


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(
        (PAIR,),
        workdir=Path(tmp_path_factory.mktemp("sandbox")),
        verified_approvals=False,
        follow_key_every=timedelta(seconds=1),
        follow_key_for=timedelta(seconds=60),
    ) as running:
        yield running
    await samba("release", PAIR, "dc2")  # never leave the pair held for the next run


def thread_of(box: Sandbox, ts: str) -> list[str]:
    return [str(c.body["text"]) for c in box.slack.channel_posts() if c.body.get("thread_ts") == ts]


async def thread_line(box: Sandbox, ts: str, needle: str, timeout: float = 45.0) -> str:
    for _ in range(int(timeout * 10)):
        for line in thread_of(box, ts):
            if needle in line:
                return line
        await asyncio.sleep(0.1)
    raise AssertionError(f"no thread line with {needle!r}: {thread_of(box, ts)}")


async def replicated(box: Sandbox, timeout: float = 20.0) -> dict[str, int | None]:
    """KeyVersion per DC once both DCs agree (the seeding on DC1 takes a moment to reach DC2)."""
    directory = box.components.directories["contoso.test"]
    for _ in range(int(timeout * 10)):
        versions = await directory.read_key_versions_per_dc()
        if None not in versions.values() and len(set(versions.values())) == 1:
            return versions
        await asyncio.sleep(0.1)
    raise AssertionError(f"the DCs never agreed: {versions}")


async def test_status_shows_the_key_version_on_each_dc(box: Sandbox) -> None:
    versions = await replicated(box)
    assert set(versions) == {DC1, DC2}
    _, replies = await box.command("status contoso.test --dcs")
    text = json.dumps(replies)
    assert "KeyVersion on each DC" in text and DC1 in text and DC2 in text and "behind" not in text


async def test_a_dc_held_back_is_reported_lagging_then_catching_up(box: Sandbox) -> None:
    await replicated(box)  # both hold the seeded key before DC2 is held back
    await samba("hold", PAIR, "dc2")  # DC2 stops pulling: it keeps answering, with the old key
    try:
        request, value, ts = await request_via_slack(box, "rotate contoso.test --force -- replication drill")
        for approver in ("U0BOB", "U0CAROL"):
            assert await click(box, approver, APPROVE_ACTION, value, ts) == 200
        done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
        assert done.state == RequestState.SUCCEEDED, done.outcome
        waiting = await thread_line(box, ts, "still waiting for")
        assert DC1 in waiting.split("still waiting for")[0] and DC2 in waiting.split("still waiting for")[1]
        _, replies = await box.command("status contoso.test --dcs")
        assert "replication has not reached it yet" in json.dumps(replies)
    finally:
        await samba("release", PAIR, "dc2")
    # released, DC2 pulls within its periodic interval (5 s) and the thread says every DC holds the key
    done_line = await thread_line(box, ts, "Every configured DC of contoso.test holds the new key")
    assert DC1 in done_line and DC2 in done_line
    await replicated(box)
