"""The README's first command, scripted through standard input: status, then the README's walkthrough
exactly as written (a forced rotation with two verified approvals, each approver signing in at the
Entra stand-in's pages from the console), then the refusals on a second request, the home tab, the
request form and the requester's direct messages, and a removal in operator-executes mode run by the operator
the card names."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
from pathlib import Path

import pytest

from tests.support.samba import pair_hosts, sandbox_domains

pytestmark = pytest.mark.samba

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_walkthrough() -> list[str]:
    """The console lines the README tells a newcomer to try, in its order."""
    sentence = re.search(r"try\s+(`/kerberos rotate.*?`wait`)", README.read_text(), re.S)
    assert sentence is not None, "the README's walkthrough sentence moved"
    return re.findall(r"`([^`]+)`", sentence.group(1))


REFUSALS = """\
/kerberos rotate contoso.test --force -- a second one
approve latest
as mallory
approve latest
as carol
approve latest
signin --no-mfa
approve latest
decline
wait
as alice
home
/kerberos remove-tdo
submit fabrikam.test -- through the form
submit contoso.test --ticket CHG-42 -- through the form
as bob
approve latest
signin
as carol
approve latest
signin
as dave
run latest
quit
"""


async def test_demo_console_runs_status_and_a_rotation_with_approvals() -> None:
    """With nothing at REDIS_URL, so the demo's own embedded redis-server keeps the approvals."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "demo",
        "--text",
        "status",
        "--dc-addresses",
        # contoso.test on the two-DC pair of the replication tests, fabrikam.test on its test DC
        ",".join((pair_hosts()[0], sandbox_domains()[1].address, pair_hosts()[1])),
        env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{dead}/0"},
        cwd="/tmp",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    walkthrough = readme_walkthrough()
    assert walkthrough[:1] == ["/kerberos rotate contoso.test --force -- try it"] and walkthrough[-1] == "wait"
    script = "\n".join(["as alice", *walkthrough, "as alice"]) + "\n" + REFUSALS
    out_bytes, _ = await asyncio.wait_for(proc.communicate(script.encode()), 180)
    out = out_bytes.decode()
    assert proc.returncode == 0, out
    assert "Kerberos status: contoso.test" in out and "Kerberos status: fabrikam.test" in out
    assert "The Samba DCs keep running" in out and "`kerberos-bot sandbox down` stops them" in out  # the end
    assert "--- kerberos-bot posts in #platform ---" in out and "[ Approve ]  [ Deny ]" in out
    walked, refusals = out.split("a second one", 1)
    # the README's walkthrough: each approver gets a link, signs in at the stand-in, lands on the bot's page
    assert "(only @bob sees this)" in walked and "needs a fresh Entra sign-in with MFA as bob@contoso.test" in walked
    assert "the browser shows: Approval recorded" in walked
    assert "@bob approved (verified as bob@contoso.test, MFA) (1 of 2)" in walked
    assert "@carol approved (verified as carol@contoso.test, MFA) (2 of 2)" in walked
    assert "Rotated: KeyVersion" in walked and "holds the new key" in walked
    first, second = pair_hosts()
    assert f"ldaps://{first}:636, ldaps://{second}:636" in walked  # both DCs of contoso.test hold it
    assert "is succeeded)" in walked
    # and what is refused
    assert "someone else has to approve it" in refusals  # alice clicked her own request
    assert "(only @mallory sees this)" in refusals and "not in a group allowed to approve" in refusals
    assert "did not use multi-factor authentication" in refusals  # carol's first sign-in
    assert "was not counted: the sign-in was cancelled" in refusals  # her second one, cancelled
    assert "still waiting for approvals" in refusals
    # the home tab, the request form, and the requester's direct messages
    assert "--- @alice's kerberos-bot home tab ---" in refusals and "Your requests" in refusals
    assert "--- a form opens for @alice: Kerberos change ---" in refusals
    assert "--- the form shows under action: There is no trusted domain object in fabrikam.test" in refusals
    assert "--- the form closes ---" in refusals
    assert "--- kerberos-bot messages @alice directly ---" in refusals and "is posted for approval" in refusals
    # the demo's remove-tdo runs in operator-executes mode: approved by two, handed to dave, run by him, verified
    handed = refusals.split("through the form", 2)[-1]
    assert "@dave at the management host, signed in to Entra as dave@contoso.test" in handed
    assert "PS> Remove-AzureADKerberosServerTrustedDomainObject -Domain 'contoso.test'" in handed
    assert "-UserPrincipalName 'dave@contoso.test'" in handed
    assert re.search(r"\(request [0-9a-f]+ is succeeded\)", handed), handed[-3000:]
