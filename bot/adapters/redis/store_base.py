"""The approval store's groundwork in Redis: the scripts, the key names, one script run (and one told of,
with the replicas' confirmation), reading a request back. ``store.py`` describes the keys; the steps of
carrying a change out are in ``execution.py``, the decisions and reads in ``store.py``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Self

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from bot.adapters.redis.client import MAX_CONNECTIONS, POOL_WAIT_SECONDS, connect, store_errors
from bot.adapters.redis.codec import (
    iso,
    ms,
    request_from,
    with_history,
)
from bot.adapters.redis.keys import KEYSPACE, call_key
from bot.adapters.redis.scripts import lua_script
from bot.domain.approvals import (
    ChangeRequest,
)
from bot.domain.errors import StoreUnavailable
from bot.domain.history import HistoryEntry

WORKERS = "workers"

# the scripts, from lua/ (one step each: a decision, a claim, a lease, a finish)
CREATE = lua_script("create", "once", "audit")
APPROVE = lua_script("approve", "once", "audit", "decision_checks")
DENY = lua_script("deny", "once", "audit", "decision_checks")
CANCEL = lua_script("cancel", "once", "audit", "decision_checks")
EXPIRE = lua_script("expire", "once", "audit")
CLAIM = lua_script("claim", "once", "audit")
RENEW = lua_script("renew")
FENCE = lua_script("fence")
ATTENTION = lua_script("attention", "once", "audit")
FINISH = lua_script("finish", "once", "audit")
CONCLUDE = lua_script("conclude", "once", "audit")
TAKE_OVER = lua_script("take_over", "once", "audit")
DEFER = lua_script("defer", "once", "audit")
WITHDRAW = lua_script("withdraw", "once", "audit")
STEP = lua_script("step", "once", "audit")
NOTE = lua_script("note", "once", "audit")
RELEASE = lua_script("release")
REMIND = lua_script("remind", "once")


def encoded_entry(entry: HistoryEntry | None) -> str:
    return entry.encoded() if entry is not None else ""


class StoreBase:
    """What every part of ``RedisApprovalStore`` stands on."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = KEYSPACE,
        *,
        reclaim_after: timedelta = timedelta(seconds=15),
        durability_timeout: timedelta = timedelta(seconds=2),
        confirm_replicas: int = 0,
        confirm_timeout: timedelta = timedelta(milliseconds=500),
    ) -> None:
        # redis-py's annotations ignore decode_responses=True; every reply here is str by construction
        self._redis: Any = client
        self._p = prefix
        self._reclaim_after_ms = int(reclaim_after.total_seconds() * 1000)
        self._durability_timeout_ms = int(durability_timeout.total_seconds() * 1000)
        self._durability: tuple[str, int] | None = None
        self._claims_durable: dict[str, str] = {}  # claim token -> how durable its claim became ("": not)
        self._cluster = isinstance(client, RedisCluster)
        # on a cluster, WAIT counts what one connection wrote: a told write and its WAIT go to the primary that
        # serves the keyspace's one slot, on a connection of this client (found anew when that primary moves)
        self._slot_primary: tuple[str, aioredis.Redis] | None = None
        # how many replicas must hold a decision before the person who made it is told (0: none asked)
        self._confirm_replicas = confirm_replicas
        self._confirm_timeout_ms = int(confirm_timeout.total_seconds() * 1000)
        self.unconfirmed_since: float | None = None  # monotonic: since when the last told write is unconfirmed
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("create", CREATE),
                ("approve", APPROVE),
                ("deny", DENY),
                ("cancel", CANCEL),
                ("expire", EXPIRE),
                ("claim", CLAIM),
                ("renew", RENEW),
                ("fence", FENCE),
                ("attention", ATTENTION),
                ("finish", FINISH),
                ("conclude", CONCLUDE),
                ("take_over", TAKE_OVER),
                ("defer", DEFER),
                ("withdraw", WITHDRAW),
                ("step", STEP),
                ("note", NOTE),
            )
        }
        self._release = client.register_script(RELEASE)
        self._remind = client.register_script(REMIND)
        self._group_ready = False
        self.round_trips = 0  # commands sent to Redis, for the benchmark

    @classmethod
    def from_url(cls, url: str, prefix: str = KEYSPACE) -> Self:
        return cls(connect(url), prefix)

    # -- keys -----------------------------------------------------------------------------------
    def _req(self, request_id: str) -> str:
        return f"{self._p}:req:{request_id}"

    def _lock(self, domain: str) -> str:
        return f"{self._p}:lock:{domain}"

    def _keys(self, request_id: str, domain: str = "") -> list[str]:
        """The keys every script is given; the last is this call's own (a decision's answer is kept under it,
        so a call the client sends again after losing its reply gets the first answer instead of running
        twice: redis-py retries a command whose connection broke, and the second run of a click that approved
        would say "already decided" and audit a refusal)."""
        return [
            self._req(request_id),
            f"{self._req(request_id)}:approvals",
            f"{self._p}:pending",
            f"{self._p}:work",
            f"{self._p}:audit",
            f"{self._p}:executing",
            self._lock(domain),
            f"{self._req(request_id)}:people",
            f"{self._req(request_id)}:clicks",
            f"{self._p}:waiting",
            f"{self._req(request_id)}:history",
            f"{self._p}:recent",
            f"{self._p}:with_operator",
            call_key(self._req(request_id)),
        ]

    async def _run(self, script: str, request_id: str, at: datetime, *extra: str, domain: str = "") -> Any:
        self.round_trips += 1
        with store_errors():
            return await self._scripts[script](
                keys=self._keys(request_id, domain), args=[request_id, ms(at), iso(at), *extra]
            )

    async def _told(
        self, script: str, request_id: str, at: datetime, *extra: str, consequence: str = "nothing was changed"
    ) -> tuple[Any, bool | None]:
        """A transition someone is told of (a request filed, a click): with replicas to confirm, the script and
        a WAIT for them go on one connection (WAIT counts what that connection wrote), so the answer waits until
        the configured number of replicas hold it, at most the configured time. Returns the script's answer and
        whether it was confirmed (None: no replica is asked)."""
        if self._confirm_replicas == 0:
            with store_errors(consequence):
                return await self._run(script, request_id, at, *extra), None
        self.round_trips += 1
        keys = self._keys(request_id)  # one call, whichever connection carries it
        with store_errors(consequence):
            if not self._cluster:
                answer, acknowledged = await self._script_and_wait(self._redis, script, request_id, keys, at, extra)
            else:
                try:
                    answer, acknowledged = await self._script_and_wait(
                        await self._primary_of_slot(), script, request_id, keys, at, extra
                    )
                except (RedisConnectionError, ResponseError) as exc:
                    if isinstance(exc, ResponseError) and not str(exc).startswith(("MOVED", "ASK", "CLUSTERDOWN")):
                        raise
                    # the slot's primary moved (a failover, a resharding): ask the cluster again, once
                    await self._redis.nodes_manager.initialize()
                    answer, acknowledged = await self._script_and_wait(
                        await self._primary_of_slot(fresh=True), script, request_id, keys, at, extra
                    )
        kept = int(acknowledged) >= self._confirm_replicas
        self.unconfirmed_since = None if kept else (self.unconfirmed_since or time.monotonic())
        return answer, kept

    async def _script_and_wait(
        self,
        client: aioredis.Redis,
        script: str,
        request_id: str,
        keys: list[str],
        at: datetime,
        extra: tuple[str, ...],
    ) -> tuple[Any, Any]:
        """The script, then WAIT, on one connection of ``client``."""
        async with client.pipeline(transaction=False) as pipe:
            await self._scripts[script](keys=keys, args=[request_id, ms(at), iso(at), *extra], client=pipe)
            pipe.wait(self._confirm_replicas, self._confirm_timeout_ms)
            answer, acknowledged = await pipe.execute()
        return answer, acknowledged

    async def _primary_of_slot(self, *, fresh: bool = False) -> aioredis.Redis:
        """A client of the cluster node that serves the keyspace's slot as primary, with the cluster's own
        connection settings (credentials, TLS, timeouts)."""
        await self._redis.initialize()  # the cluster's nodes known (a no-op once they are)
        node = self._redis.get_node_from_key(self._req("-"))
        if self._slot_primary is not None and (fresh or self._slot_primary[0] != node.name):
            await self._slot_primary[1].aclose()
            self._slot_primary = None
        if self._slot_primary is None:
            pool = BlockingConnectionPool(
                connection_class=node.connection_class,
                max_connections=MAX_CONNECTIONS,
                timeout=POOL_WAIT_SECONDS,
                **node.connection_kwargs,
            )
            self._slot_primary = (node.name, aioredis.Redis.from_pool(pool))
        return self._slot_primary[1]

    async def confirmation(self) -> None:
        """Raises ``StoreUnavailable`` while the last write someone was told of is not on the replicas it must
        be on (a readiness check: durability is degraded)."""
        if self.unconfirmed_since is not None:
            raise StoreUnavailable(
                f"durability degraded: no {self._confirm_replicas} Redis replica(s) confirmed the last decision "
                f"within {self._confirm_timeout_ms} ms"
            )

    async def get(self, request_id: str) -> ChangeRequest | None:
        [request] = await self.get_many([request_id])
        return request

    async def get_many(self, request_ids: Sequence[str]) -> list[ChangeRequest | None]:
        """The requests, in the order asked, in one round trip (None where one is gone)."""
        if not request_ids:
            return []
        with store_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                for request_id in request_ids:
                    pipe.hgetall(self._req(request_id))
                    pipe.hgetall(f"{self._req(request_id)}:approvals")
                    pipe.lrange(f"{self._req(request_id)}:history", 0, -1)
                answers = await pipe.execute()
        return [
            with_history(request_from(fields, approvals), history) if fields else None
            for fields, approvals, history in zip(answers[0::3], answers[1::3], answers[2::3], strict=True)
        ]

    async def _domain_of(self, request_id: str) -> str | None:
        with store_errors():
            domain = await self._redis.hget(self._req(request_id), "domain")
        return str(domain) if domain is not None else None

    async def close(self) -> None:
        if self._slot_primary is not None:
            await self._slot_primary[1].aclose()
        await self._redis.aclose()
