"""``kerberos-bot demo``: the sandbox, one signed slash command, and what Slack would show."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from bot.sandbox.render import render_message
from bot.sandbox.sandbox import sandbox


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(text: str = "status", keep_running: bool = False) -> int:
    started = time.monotonic()
    _say("kerberos-bot demo: starting Samba AD DCs (contoso.test, fabrikam.test), the Entra and Slack stand-ins…")
    async with sandbox() as box:
        _say(f"ready in {time.monotonic() - started:.0f} s; config: {box.config_path}")
        _say(f"\n@alice in #platform:  /kerberos {text}\n")
        ack, replies = await box.command(text)
        if ack.status != 200:
            _say(f"the bot answered HTTP {ack.status}: {ack.body}")
            return 1
        _say(f"--- acknowledged in {ack.seconds * 1000:.0f} ms (only @alice sees this) ---")
        _say(render_message(ack.json()) if ack.body else "(empty acknowledgement)")
        for reply in replies:
            visible = "everyone in #platform" if reply.get("response_type") == "in_channel" else "only @alice"
            _say(f"\n--- kerberos-bot ({visible} sees this) ---")
            _say(render_message(reply))
        if keep_running:
            _say(f"\nThe bot listens on {box.endpoint} (signing secret {box.signing_secret}); Ctrl-C stops.")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run_demo()))
