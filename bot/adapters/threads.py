"""Bounded thread pools, one per blocking library, so that one kind of work cannot starve another:
a burst of approvers' sign-ins (device-code polling) never takes the threads LDAP reads and the
module's calls need, and a hung DC holds only the LDAP pool's threads.

``asyncio.to_thread`` would put every library in the loop's one default pool. These pools copy
the caller's context variables into the thread, as ``to_thread`` does (the log lines keep their
request id and Slack user).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

T = TypeVar("T")
Pool = Literal["ldap", "entra", "sign-in", "remoting"]

# threads per pool: LDAP serves every status read and change; the others are light by comparison
SIZES: dict[Pool, int] = {"ldap": 8, "entra": 4, "sign-in": 4, "remoting": 4}
_pools: dict[Pool, ThreadPoolExecutor] = {}


def executor(pool: Pool) -> ThreadPoolExecutor:
    if pool not in _pools:
        _pools[pool] = ThreadPoolExecutor(max_workers=SIZES[pool], thread_name_prefix=f"kerberos-bot-{pool}")
    return _pools[pool]


async def run_in(pool: Pool, function: Callable[..., T], /, *args: object) -> T:
    """``function(*args)`` in ``pool``'s threads, with the caller's context variables."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args)
    return await asyncio.get_running_loop().run_in_executor(executor(pool), call)
