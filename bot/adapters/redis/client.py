"""The one way the bot talks to Redis: a client with production timeouts and reconnects, and one
mapping of Redis's failures to the domain's ``StoreUnavailable`` (the shape of httpx's
``map_httpcore_exceptions``).

A single server is ``redis://`` (``rediss://`` with TLS); a primary that fails over under Redis
Sentinel is ``redis+sentinel://[user:password@]sentinel1:26379,sentinel2:26379,.../<primary name>[/<db>]``
(``rediss+sentinel://`` with TLS to the primary and the sentinels; ``?sentinel_password=`` when the
sentinels ask for one). With Sentinel, each new connection asks the sentinels where the primary is; a
connection to a primary that was demoted answers READONLY, which redis-py turns into a connection
error, so the retry below reconnects to the new primary: a failover is followed without a restart.

After a Redis restart every pooled connection is dead. redis-py retries only the errors named in
``retry_on_error`` (none by default), so without them the first command on each dead connection
failed, for as long as the pool held dead ones. Here a connection or timeout error is retried on a
fresh connection (three times, backing off from 50 ms to 1 s), and a connection idle for longer
than ``health_check_interval`` is pinged before it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.auth.err import RequestTokenErr
from redis.backoff import ExponentialWithJitterBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.domain.errors import ConfigurationError, StoreUnavailable

CONNECT_TIMEOUT = 5.0  # seconds: a Redis host that does not answer must not hold replies or clicks for minutes
READ_TIMEOUT = 10.0  # longer than the longest blocking read (a worker's XREADGROUP waits 1 s)
HEALTH_CHECK_SECONDS = 15
# redis-py's pool refuses a command outright ("Too many connections") once 100 are in use: a burst of fifty
# clicks, each with a few commands, was refused as "Redis is unavailable". The bot's pools wait for a free
# connection instead, at most this long, with this many per process (per node, on a cluster).
MAX_CONNECTIONS = 100
POOL_WAIT_SECONDS = 5.0
CLUSTER_MAX_CONNECTIONS = 1000  # per node


SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
URL_FORMS = (
    "redis://host:6379/0, rediss://host:6380/0, redis+sentinel://sentinel1:26379,sentinel2:26379/<primary>/0, "
    "or redis+cluster://node1:6379,node2:6379 (rediss+cluster:// with TLS)"
)


@dataclass(frozen=True)
class SentinelTarget:
    """Where a ``redis+sentinel://`` URL points: the sentinels, the primary's name, and how to reach it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str  # the primary's name in the sentinels' configuration
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    tls_ca: str | None = None


def sentinel_target(url: str) -> SentinelTarget:
    """The target of a ``redis+sentinel://`` URL; ``ConfigurationError`` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ConfigurationError(f"REDIS_URL: {parts.scheme}:// is not a Sentinel URL; use {URL_FORMS}")
    where = parts.netloc.rpartition("@")[2]
    sentinels = []
    for host_port in where.split(","):
        host, colon, port = host_port.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigurationError(
                f"REDIS_URL: the sentinel {host_port.strip() or '(empty)'!r} is not host:port; use {URL_FORMS}"
            )
        sentinels.append((host.strip("[]"), int(port)))
    path = [p for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            f"REDIS_URL: name the primary after the sentinels (/<primary>[/<db>]); use {URL_FORMS}"
        )
    query = parse_qs(parts.query)
    return SentinelTarget(
        tuple(sentinels),
        unquote(path[0]),
        int(path[1]) if len(path) == 2 else 0,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        query.get("sentinel_password", [None])[0],
        parts.scheme == "rediss+sentinel",
        query.get("ssl_ca_certs", [None])[0],
    )


def _client_options(decode_responses: bool, credential_provider: CredentialProvider | None = None) -> dict[str, Any]:
    return {
        **({"credential_provider": credential_provider} if credential_provider is not None else {}),
        "decode_responses": decode_responses,
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": READ_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError],
    }


def connect(
    url: str, *, decode_responses: bool = True, credential_provider: CredentialProvider | None = None
) -> aioredis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``redis+sentinel://``, ``redis+cluster://`` and their
    TLS forms) with the bot's timeouts and reconnects; ``credential_provider`` signs it in instead of a password
    in the URL (Entra ID, ``entra_auth.py``). A URL of another form is a ``ConfigurationError`` naming REDIS_URL."""
    scheme = urlsplit(url).scheme
    if scheme in SENTINEL_SCHEMES:
        return _sentinel_primary(sentinel_target(url), decode_responses, credential_provider)
    if scheme in CLUSTER_SCHEMES:
        return _cluster(url, decode_responses, credential_provider)
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"REDIS_URL: {scheme or 'a URL without a scheme'}:// is not supported; use {URL_FORMS}"
        )
    try:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_SECONDS,
            **_client_options(decode_responses, credential_provider),
        )
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL: {exc}; use {URL_FORMS}") from exc
    return aioredis.Redis.from_pool(pool)  # the client owns its pool: closing it closes the connections


class _WaitingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """The primary's connections as Sentinel finds them, and, once all are in use, a wait for a free one
    (``BlockingConnectionPool``) instead of a refusal."""


class _SentinelPrimary(aioredis.Redis):
    """The primary's client; closing it closes the connections to the sentinels too."""

    sentinel_clients: list[aioredis.Redis]

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for client in getattr(self, "sentinel_clients", []):
            await client.aclose()


def _sentinel_primary(
    target: SentinelTarget, decode_responses: bool, credential_provider: CredentialProvider | None = None
) -> aioredis.Redis:
    tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": target.tls_ca} if target.tls else {}
    to_sentinels: dict[str, Any] = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT, **tls}
    if target.sentinel_password:
        to_sentinels["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=to_sentinels)  # type: ignore[no-untyped-call]
    primary: _SentinelPrimary = sentinel.master_for(
        target.service,
        redis_class=_SentinelPrimary,
        connection_pool_class=_WaitingSentinelPool,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        db=target.db,
        username=target.username,
        password=target.password,
        **_client_options(decode_responses, credential_provider),
        **tls,
    )
    primary.sentinel_clients = list(sentinel.sentinels)
    return primary


def cluster_nodes(url: str) -> tuple[tuple[str, int], ...]:
    """The nodes a ``redis+cluster://`` URL names (any of them leads to the rest)."""
    parts = urlsplit(url)
    nodes = []
    for host_port in parts.netloc.rpartition("@")[2].split(","):
        host, colon, port = host_port.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigurationError(
                f"REDIS_URL: the cluster node {host_port.strip() or '(empty)'!r} is not host:port; use {URL_FORMS}"
            )
        nodes.append((host.strip("[]"), int(port)))
    if parts.path.strip("/") not in ("", "0"):
        raise ConfigurationError("REDIS_URL: a Redis Cluster has database 0 only; drop the /<db> after the nodes")
    return tuple(nodes)


def is_cluster(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


class ClusterConnection(aioredis.Connection):
    """redis-py 8.1's cluster client closes a node's connections when one of them fails (and when it reloads the
    slots) while other tasks are between connecting and writing on them: the writer is then None, and an
    AttributeError escaped where a ConnectionError belongs (redis/redis-py#4287), past redis-py's retry and the
    bot's ``store_errors``, so a click in a burst on a healthy cluster was answered with an internal error. The
    write never happened, so it is said as the lost connection it is, and retried like one."""

    async def _send_packed_command(self, command: Iterable[bytes]) -> None:
        if self._writer is None:
            raise RedisConnectionError("the connection was closed by another task before this write")
        await super()._send_packed_command(command)


class ClusterSSLConnection(ClusterConnection, aioredis.SSLConnection):
    """``ClusterConnection``'s write over TLS (the write itself is SSLConnection's, by the method order)."""


def _cluster(url: str, decode_responses: bool, credential_provider: CredentialProvider | None = None) -> aioredis.Redis:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    options = _client_options(decode_responses)
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in cluster_nodes(url)],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss+cluster",
        ssl_ca_certs=query.get("ssl_ca_certs", [None])[0],
        decode_responses=decode_responses,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=READ_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=options["retry"],
        credential_provider=credential_provider,
        # redis-py's cluster client cannot wait for a free connection: a ceiling no burst of the bot reaches
        max_connections=CLUSTER_MAX_CONNECTIONS,
    )
    # redis-py takes no connection class for a cluster: the nodes it has made and those it will make get this one
    connection_class = ClusterSSLConnection if parts.scheme == "rediss+cluster" else ClusterConnection
    client.nodes_manager.connection_kwargs["connection_class"] = connection_class
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = connection_class
    # the cluster client has the same commands; the ports' adapters use those only
    return cast(aioredis.Redis, client)


# Redis answers these when it is up but cannot serve: the same to the user as down
_UNSERVED = ("MISCONF", "NOREPLICAS", "OOM", "MASTERDOWN", "LOADING", "READONLY", "CLUSTERDOWN")


@contextlib.contextmanager
def store_errors(consequence: str = "nothing was changed") -> Iterator[None]:
    """Redis's and the socket's failures become ``StoreUnavailable`` saying what they mean for the user.
    Any other Redis error (a script or command the bot got wrong) is a bug: it is left as it is, so it
    is logged with its traceback and the user gets a reference."""
    try:
        yield
    except RequestTokenErr as exc:  # [redis.entra]: no token from Entra ID to sign in with
        raise StoreUnavailable(
            f"The approval store (Redis) could not be signed in to with Entra ID ({exc}); {consequence}."
        ) from exc
    except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
        raise StoreUnavailable(f"The approval store (Redis) is unavailable; {consequence}.") from exc
    except RedisError as exc:
        if not str(exc).startswith(_UNSERVED):
            raise
        raise StoreUnavailable(f"The approval store (Redis) is unavailable; {consequence}.") from exc
