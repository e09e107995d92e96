"""The one way the bot talks to Redis: a client with production timeouts and reconnects, and one
mapping of Redis's failures to the domain's ``StoreUnavailable`` (the shape of httpx's
``map_httpcore_exceptions``).

After a Redis restart every pooled connection is dead. redis-py retries only the errors named in
``retry_on_error`` (none by default), so without them the first command on each dead connection
failed, for as long as the pool held dead ones. Here a connection or timeout error is retried on a
fresh connection (three times, backing off from 50 ms to 1 s), and a connection idle for longer
than ``health_check_interval`` is pinged before it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.domain.errors import StoreUnavailable

CONNECT_TIMEOUT = 5.0  # seconds: a Redis host that does not answer must not hold replies or clicks for minutes
READ_TIMEOUT = 10.0  # longer than the longest blocking read (a worker's XREADGROUP waits 1 s)
HEALTH_CHECK_SECONDS = 15


def connect(url: str, *, decode_responses: bool = True) -> aioredis.Redis:
    """A client for ``url`` (``redis://`` or ``rediss://``) with the bot's timeouts and reconnects."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=READ_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError],
    )


# Redis answers these when it is up but cannot serve: the same to the user as down
_UNSERVED = ("MISCONF", "NOREPLICAS", "OOM", "MASTERDOWN", "LOADING", "READONLY", "CLUSTERDOWN")


@contextlib.contextmanager
def store_errors(consequence: str = "nothing was changed") -> Iterator[None]:
    """Redis's and the socket's failures become ``StoreUnavailable`` saying what they mean for the user.
    Any other Redis error (a script or command the bot got wrong) is a bug: it is left as it is, so it
    is logged with its traceback and the user gets a reference."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(f"The approval store (Redis) is unavailable; {consequence}.") from exc
    except RedisError as exc:
        if not str(exc).startswith(_UNSERVED):
            raise
        raise StoreUnavailable(f"The approval store (Redis) is unavailable; {consequence}.") from exc
