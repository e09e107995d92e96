"""The README's first command, scripted through standard input: status, then a full forced rotation with
verified approvals (each approver signs in at the Entra stand-in from the console)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba

SCRIPT = """\
/kerberos rotate contoso.test --force -- demo rotation
approve latest
as mallory
approve latest
as bob
approve latest
signin
as carol
approve latest
signin --no-mfa
approve latest
signin
wait
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
        ",".join(d.address for d in sandbox_domains()),  # the test DCs (KERBEROS_BOT_TEST_DC_HOSTS)
        env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{dead}/0"},
        cwd="/tmp",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out_bytes, _ = await asyncio.wait_for(proc.communicate(SCRIPT.encode()), 180)
    out = out_bytes.decode()
    assert proc.returncode == 0, out
    assert "Kerberos status: contoso.test" in out and "Kerberos status: fabrikam.test" in out
    assert "--- kerberos-bot posts in #platform ---" in out and "[ Approve ]  [ Deny ]" in out
    assert "someone else has to approve it" in out  # alice clicked her own request
    assert "(only @mallory sees this)" in out and "not in a group allowed to approve" in out
    # a forced rotation needs verified approvals: each approver signs in at the Entra stand-in
    assert "(only @bob sees this)" in out and "Sign in as bob@contoso.test" in out
    assert "@bob approved (verified as bob@contoso.test, MFA) (1 of 2)" in out
    assert "did not use multi-factor authentication" in out  # carol's first sign-in
    assert "@carol approved (verified as carol@contoso.test, MFA) (2 of 2)" in out
    assert "Rotated: KeyVersion" in out and "holds the new key" in out
    assert "is succeeded)" in out
