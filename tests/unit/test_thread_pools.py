"""Each blocking library has its own bounded pool: sign-ins that hang cannot starve LDAP reads."""

from __future__ import annotations

import asyncio
import threading

from bot.adapters.threads import SIZES, run_in
from bot.observability.logs import SLACK_USER


async def test_hung_sign_ins_leave_the_ldap_pool_free_and_keep_the_log_context() -> None:
    release = threading.Event()
    hung = [asyncio.ensure_future(run_in("sign-in", release.wait, 10)) for _ in range(SIZES["sign-in"] * 3)]
    SLACK_USER.set("U0BOB")
    try:
        # every sign-in thread is taken, yet an LDAP read runs at once, with the caller's context
        assert await asyncio.wait_for(run_in("ldap", SLACK_USER.get), 2) == "U0BOB"
    finally:
        release.set()
        await asyncio.gather(*hung)
