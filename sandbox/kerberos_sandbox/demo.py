"""``kerberos-bot demo``: the sandbox, one signed slash command, and what Slack would show."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from kerberos_sandbox.console import Console
from kerberos_sandbox.sandbox import sandbox
from kerberos_sandbox.standalone import domains_on


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(
    text: str = "status",
    keep_running: bool = False,
    console: bool = True,
    redis_url: str = "redis://127.0.0.1:6379/0",
    dc_addresses: tuple[str, ...] | None = None,
) -> int:
    """``dc_addresses``: contoso.test's first DC, fabrikam.test's DC and (optional) contoso.test's second."""
    started = time.monotonic()
    domains = domains_on(dc_addresses)
    where = ", ".join(f"{d.name} on {' and '.join(d.addresses)}" for d in domains)
    _say(f"kerberos-bot demo: starting Samba AD DCs ({where}), the Entra and Slack stand-ins…")
    async with sandbox(domains, redis_url=redis_url, extra_config=DEMO_OPERATORS) as box:
        _say(f"ready in {time.monotonic() - started:.0f} s; config: {box.config_path}")
        screen = Console(box)
        await screen.handle(f"/kerberos {text}")
        if console:
            await screen.run(sys.stdin.readline)
        if keep_running:
            _say(f"\nThe bot listens on {box.endpoint} (signing secret {box.signing_secret}); Ctrl-C stops.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    _say(GOODBYE)
    return 0


# operator-executes mode for one action, so the demo shows it: an approved remove-tdo is handed to someone of
# the group (never its requester or approvers), who runs it at the management host with their own sign-in
DEMO_OPERATORS = """[operators]
groups = ["S0KERBADMINS"]
time_limit_minutes = 30

[approvals.remove_tdo]
execution = "operator"
"""


# the DCs take a minute to provision: the demo leaves them running for the next start, and says so
GOODBYE = (
    "\nThe bot and the stand-ins have stopped. The Samba DCs keep running, so the next `make demo` starts in "
    "seconds; `kerberos-bot sandbox down` stops them."
)


if __name__ == "__main__":
    sys.exit(asyncio.run(run_demo()))
