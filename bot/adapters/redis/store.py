"""Change requests in Redis: every transition is one Lua script, so one round trip per click and
no interleaving between the check and the change, whatever the number of clicks, approvers, bot
replicas or Slack retries.

Keys (``P`` is the configured prefix, by default one hash tag, ``{kerberos-bot}``: every key in one slot,
so the scripts, which touch only the keys they are given, run on a cluster too; ``keys.py``):
    P:req:<id>             hash: the request (with its claim: lease_token, lease_until_ms, claimed_by)
    P:req:<id>:approvals   hash: approver -> time, or JSON with the verified Entra identity; its size is
                           the approval count
    P:req:<id>:history     list: every transition, each entry signed by the bot (bot.domain.history), appended
                           by the script that makes the transition; the execution's steps are its journal
    P:req:<id>:people      hash: Entra object id -> the Slack user who approved as that person
    P:req:<id>:clicks      set: "<user>|<verdict>" of the refused clicks already audited (audited once)
    P:signin:<state>       string: a browser sign-in's signed ticket, until its callback takes it
    P:signin-used:<state>  string: the ticket once taken, so a replayed link is recognised
    P:pending              sorted set: pending request ids by expiry (ms)
    P:recent               sorted set: every request id by creation (ms); the sweep forgets old finished ones
    P:executing            set: claimed, not finished
    P:with_operator        set: handed to an operator (operator-executes mode), not yet concluded
    P:lock:<domain>        string "<request id>:<token>": the claim that holds the domain (a backstop
                           expiry; the lease in the request decides)
    P:work                 stream: approved requests for the workers (consumer group "workers"); an entry
                           is deleted once its request is claimed or gone, so it holds only waiting work
    P:waiting              sorted set: approved request ids waiting for their change window, by its opening
                           (ms); a claim first moves those whose window has opened to P:work
    P:audit                stream: append-only trail of every event, trimmed to the retention by the sweep

Beside it, in their own modules: ``P:commands`` (commands.py), ``P:rate:<bucket>`` (rate.py),
``P:seen:<digest>`` (replay.py), ``P:lead:<job>`` and ``P:lifecycle`` (lifecycle.py). The scripts are in ``lua/``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from bot.adapters.redis.client import connect, store_errors
from bot.adapters.redis.codec import (
    allowed_list,
    approval_value,
    audit_entry,
    iso,
    ms,
    pairs,
    request_from,
    with_history,
)
from bot.adapters.redis.keys import KEYSPACE
from bot.adapters.redis.scripts import lua_script
from bot.domain.approvals import (
    Action,
    AuditEntry,
    ChangeRequest,
    Claim,
    DecisionResult,
    FinishResult,
    RequestState,
    Verdict,
)
from bot.domain.errors import StoreUnavailable
from bot.domain.history import Event, HistoryEntry
from bot.domain.verification import VerifiedIdentity

WORKERS = "workers"

# the scripts, from lua/ (one step each: a decision, a claim, a lease, a finish)
CREATE = lua_script("create", "audit")
APPROVE = lua_script("approve", "audit", "decision_checks")
DENY = lua_script("deny", "audit", "decision_checks")
CANCEL = lua_script("cancel", "audit", "decision_checks")
EXPIRE = lua_script("expire", "audit")
CLAIM = lua_script("claim", "audit")
RENEW = lua_script("renew")
FENCE = lua_script("fence")
ATTENTION = lua_script("attention", "audit")
FINISH = lua_script("finish", "audit")
CONCLUDE = lua_script("conclude", "audit")
DEFER = lua_script("defer", "audit")
WITHDRAW = lua_script("withdraw", "audit")
RELEASE = lua_script("release")
REMIND = lua_script("remind")


def _durability_plan(info: dict[str, Any], appendonly: str | None) -> tuple[str, int]:
    """What ``make_durable`` can ask of this server: WAITAOF (7.2+, with AOF or replicas), WAIT
    (replicas), or nothing beyond Redis's own appendfsync."""
    version = tuple(int(p) for p in str(info.get("redis_version", "0.0.0")).split(".")[:2])
    replicas = int(info.get("connected_slaves", 0) or 0)
    if version >= (7, 2) and (appendonly == "yes" or replicas):
        return "waitaof", replicas
    if replicas:
        return "wait", replicas
    return "none", 0


def _encoded(entry: HistoryEntry | None) -> str:
    return entry.encoded() if entry is not None else ""


def _audit(request_id: str, event: str, actor: str | None, at: datetime, detail: str) -> dict[str, str]:
    """An entry of the audit stream as the Python side writes it (the Lua scripts write the same fields)."""
    return {"request": request_id, "event": event, "actor": actor or "", "at": iso(at), "detail": detail}


class RedisApprovalStore:
    """Implements ``bot.domain.ports.ApprovalStore``."""

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
        self._cluster = isinstance(client, RedisCluster)  # one connection per command: no WAIT of ours there
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
                ("defer", DEFER),
                ("withdraw", WITHDRAW),
            )
        }
        self._release = client.register_script(RELEASE)
        self._remind = client.register_script(REMIND)
        self._group_ready = False
        self.round_trips = 0  # commands sent to Redis, for the benchmark

    @classmethod
    def from_url(cls, url: str, prefix: str = KEYSPACE) -> RedisApprovalStore:
        return cls(connect(url), prefix)

    # -- keys -----------------------------------------------------------------------------------
    def _req(self, request_id: str) -> str:
        return f"{self._p}:req:{request_id}"

    def _lock(self, domain: str) -> str:
        return f"{self._p}:lock:{domain}"

    def _keys(self, request_id: str, domain: str = "") -> list[str]:
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
        with store_errors(consequence):
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._scripts[script](
                    keys=self._keys(request_id), args=[request_id, ms(at), iso(at), *extra], client=pipe
                )
                pipe.wait(self._confirm_replicas, self._confirm_timeout_ms)
                answer, acknowledged = await pipe.execute()
        kept = int(acknowledged) >= self._confirm_replicas
        self.unconfirmed_since = None if kept else (self.unconfirmed_since or time.monotonic())
        return answer, kept

    async def confirmation(self) -> None:
        """Raises ``StoreUnavailable`` while the last write someone was told of is not on the replicas it must
        be on (a readiness check: durability is degraded)."""
        if self.unconfirmed_since is not None:
            raise StoreUnavailable(
                f"durability degraded: no {self._confirm_replicas} Redis replica(s) confirmed the last decision "
                f"within {self._confirm_timeout_ms} ms"
            )

    # -- transitions ----------------------------------------------------------------------------
    async def create(self, request: ChangeRequest, *, entry: HistoryEntry | None = None) -> bool | None:
        fields = {
            "id": request.id,
            "action": request.action.value,
            "domain": request.domain,
            "requester": request.requester,
            "reason": request.reason,
            "plan": json.dumps(list(request.plan)),
            "created_at": iso(request.created_at),
            "created_at_ms": str(ms(request.created_at)),
            "expires_at": iso(request.expires_at),
            "expires_at_ms": str(ms(request.expires_at)),
            "approvals_required": str(request.approvals_required),
            "state": RequestState.PENDING.value,
            "channel": request.channel or "",
            "card": request.card or "",
            "expected_key_version": "" if request.expected_key_version is None else str(request.expected_key_version),
            "top_level_names": ",".join(request.top_level_names),
            "origin": request.origin,
            "requester_upn": request.requester_upn or "",
            "requester_oid": request.requester_oid or "",
            "twice": "1" if request.twice else "",
            "follows": request.follows or "",
            "second_with_first": "1" if request.second_with_first else "",
            "approved_with": request.approved_with or "",
            "world": request.world,
            "mac": request.mac,
        }
        # a second rotation approved together with its first is filed approved: straight to the workers
        filed_approved = request.approved_with is not None
        if filed_approved:
            at = iso(request.created_at)
            fields.update(state=RequestState.APPROVED.value, approved_at=at, approved_at_ms=str(ms(request.created_at)))
        pairs_of_fields = [part for item in fields.items() for part in item]
        _answer, kept = await self._told(
            "create",
            request.id,
            request.created_at,
            request.requester,
            request.reason,
            "1" if filed_approved else "",
            request.approved_with or "",
            str(ms(request.expires_at)),
            _encoded(entry),
            *pairs_of_fields,
            consequence="the request was not recorded",
        )
        return kept

    async def set_card(self, request_id: str, channel: str, card: str) -> None:
        with store_errors("the card was posted but the bot could not note where"):
            await self._redis.hset(self._req(request_id), mapping={"channel": channel, "card": card})

    @staticmethod
    def _result(told: tuple[list[Any], bool | None]) -> DecisionResult:
        """The script's answer carries the request itself: the click is one round trip (with the replicas'
        confirmation, where they are asked, on the same one)."""
        answer, kept = told
        verdict, count = Verdict(answer[0]), int(answer[1])
        if verdict == Verdict.NOT_FOUND:
            return DecisionResult(verdict, None, 0)
        return DecisionResult(verdict, request_from(pairs(answer[2]), pairs(answer[3])), count, kept)

    async def approve(
        self,
        request_id: str,
        approver: str,
        at: datetime,
        identity: VerifiedIdentity | None = None,
        *,
        mac: str = "",
        allowed: frozenset[Action] | None = None,
        verified_actions: frozenset[Action] = frozenset(),
        origin: str = "",
        entry: HistoryEntry | None = None,
    ) -> DecisionResult:
        verified = (
            (identity.describe(), identity.object_id, identity.upn, iso(identity.signed_in_at))
            if identity
            else ("", "", "", "")
        )
        return self._result(
            await self._told(
                "approve",
                request_id,
                at,
                approver,
                origin,
                allowed_list(allowed),
                approval_value(at, identity, mac),
                *verified,
                "\n".join(a.value for a in verified_actions),
                _encoded(entry),
            )
        )

    async def deny(
        self,
        request_id: str,
        approver: str,
        reason: str,
        at: datetime,
        *,
        allowed: frozenset[Action] | None = None,
        origin: str = "",
        entry: HistoryEntry | None = None,
    ) -> DecisionResult:
        return self._result(
            await self._told("deny", request_id, at, approver, origin, allowed_list(allowed), reason, _encoded(entry))
        )

    async def cancel(
        self, request_id: str, requester: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        return self._result(await self._told("cancel", request_id, at, requester, "", "*", _encoded(entry)))

    async def note(self, request_id: str, event: str, actor: str | None, detail: str, at: datetime) -> None:
        self.round_trips += 1
        with store_errors():
            await self._redis.xadd(f"{self._p}:audit", _audit(request_id, event, actor, at, detail))

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        self.round_trips += 1
        with store_errors():
            await self._redis.xadd(f"{self._p}:audit", _audit(request_id, "refused", actor, at, why))

    async def expire_due(self, at: datetime) -> list[str]:
        with store_errors():
            due = await self._redis.zrangebyscore(f"{self._p}:pending", "-inf", ms(at))
        return [rid for rid in due if await self._run("expire", rid, at) == 1]

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._redis.xgroup_create(f"{self._p}:work", WORKERS, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def claim_next(self, consumer: str, lease: timedelta, at: datetime, block_ms: int = 0) -> Claim | None:
        stream = f"{self._p}:work"
        with store_errors("no change was started"):
            await self._ensure_group()
            # the requests whose change window has opened join the stream first
            self.round_trips += 1
            await self._release(keys=[f"{self._p}:waiting", stream], args=[ms(at)])
            # entries another worker read but never settled (it died, or their domain was busy), after a
            # minimum idle time; then a new one, waiting for it only when nothing else was offered
            _next, reclaimed, *_ = await self._redis.xautoclaim(
                stream, WORKERS, consumer, self._reclaim_after_ms, start_id="0-0", count=10
            )
            for entry_id, fields in reclaimed:
                if (claimed := await self._try_claim(entry_id, fields, consumer, lease, at)) is not None:
                    return claimed
            block = None if reclaimed else (block_ms or None)
            for _ in range(10):  # past new entries whose domain is busy, a few at a time
                answer = await self._redis.xreadgroup(WORKERS, consumer, {stream: ">"}, count=1, block=block)
                messages = [m for _stream, batch in answer or [] for m in batch]
                if not messages:
                    return None
                for entry_id, fields in messages:
                    if (claimed := await self._try_claim(entry_id, fields, consumer, lease, at)) is not None:
                        return claimed
                block = None
        return None

    async def _try_claim(
        self, entry_id: str, fields: dict[str, str] | None, consumer: str, lease: timedelta, at: datetime
    ) -> Claim | None:
        request_id = (fields or {}).get("request", "")
        domain = await self._domain_of(request_id) if request_id else None  # the lock to take
        lease_ms = int(lease.total_seconds() * 1000)
        token = uuid.uuid4().hex
        answer = ["gone"]
        if domain is not None:
            backstop = str(lease_ms * 4)  # the lock key's own expiry, should every worker die; the lease decides
            answer = await self._claim_durably(request_id, at, consumer, token, str(lease_ms), backstop, domain)
        if answer[0] == "busy":
            return None  # stays pending: offered again after the minimum idle time
        await self._redis.xack(f"{self._p}:work", WORKERS, entry_id)
        await self._redis.xdel(f"{self._p}:work", entry_id)
        if answer[0] != "claimed":
            return None
        claimed = await self.get(request_id)
        assert claimed is not None
        return Claim(claimed, token, datetime.fromtimestamp(int(answer[1]) / 1000, UTC))

    async def renew(self, claim: Claim, lease: timedelta, at: datetime) -> Claim | None:
        lease_ms = int(lease.total_seconds() * 1000)
        until = await self._run(
            "renew", claim.request.id, at, claim.token, str(lease_ms), str(lease_ms * 4), domain=claim.request.domain
        )
        if not until:
            return None
        return replace(claim, lease_until=datetime.fromtimestamp(int(until) / 1000, UTC))

    async def holds(self, claim: Claim, margin: timedelta, at: datetime) -> bool:
        margin_ms = str(int(margin.total_seconds() * 1000))
        left = await self._run("fence", claim.request.id, at, claim.token, margin_ms, domain=claim.request.domain)
        return bool(left)

    async def pending(self, count: int = 200) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.zrange(f"{self._p}:pending", 0, count - 1)
        found = [await self.get(i) for i in ids]
        return [r for r in found if r is not None and r.state == RequestState.PENDING]

    async def mark_reminded(self, request_id: str, number: int) -> bool:
        self.round_trips += 1
        with store_errors():
            return bool(await self._remind(keys=[self._req(request_id)], args=[str(number)]))

    async def defer(
        self, claim: Claim, until: datetime, mac: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        answer = await self._run(
            "defer",
            claim.request.id,
            at,
            claim.token,
            str(ms(until)),
            iso(until),
            mac,
            note,
            _encoded(entry),
            domain=claim.request.domain,
        )
        return bool(answer == 1)

    async def withdraw(
        self, request_id: str, actor: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        answer, kept = await self._told("withdraw", request_id, at, actor, _encoded(entry))
        request = await self.get(request_id)
        return DecisionResult(Verdict(answer), request, len(request.approvals) if request else 0, kept)

    async def _plan(self) -> tuple[str, int]:
        if self._durability is None:
            if self._cluster:
                self._durability = ("cluster", 0)
            else:
                info = {**await self._redis.info("server"), **await self._redis.info("replication")}
                try:
                    appendonly = (await self._redis.config_get("appendonly")).get("appendonly")
                except ResponseError:  # CONFIG refused by an ACL: assume no AOF
                    appendonly = None
                self._durability = _durability_plan(info, appendonly)
        return self._durability

    async def _claim_durably(self, request_id: str, at: datetime, *extra: str) -> Any:
        """The claim script, and where the plan says so WAITAOF or WAIT with it on one connection: they count
        what that connection wrote. How durable it became is kept for ``make_durable``."""
        *args, domain = extra
        with store_errors("no change was started"):
            how, replicas = await self._plan()
            if how not in ("wait", "waitaof"):
                return await self._run("claim", request_id, at, *args, domain=domain)
            self.round_trips += 1
            async with self._redis.pipeline(transaction=False) as pipe:
                await self._scripts["claim"](
                    keys=self._keys(request_id, domain), args=[request_id, ms(at), iso(at), *args], client=pipe
                )
                if how == "waitaof":
                    pipe.execute_command("WAITAOF", 1 if replicas == 0 else 0, replicas, self._durability_timeout_ms)
                else:
                    pipe.execute_command("WAIT", replicas, self._durability_timeout_ms)
                answer, confirmed = await pipe.execute()
        if answer[0] == "claimed":
            token = args[1]
            if how == "waitaof":
                local, remote = (int(n) for n in confirmed)
                kept = local + remote >= 1
                said = f"WAITAOF: fsynced locally {local}, on {remote} of {replicas} replicas"
            else:
                kept = int(confirmed) >= 1
                said = f"WAIT: on {confirmed} of {replicas} replicas"
            self._claims_durable[token] = said if kept else ""
        return answer

    async def make_durable(self, claim: Claim) -> str:
        with store_errors("no change was started"):
            how, replicas = await self._plan()
        if how == "cluster":
            return "a Redis Cluster: as durable as its replication (WAIT counts one connection's writes)"
        if how == "none":
            return "no replicas and no WAITAOF (Redis < 7.2): as durable as Redis's appendfsync setting"
        said = self._claims_durable.pop(claim.token, None)
        if not said:
            what = "on disk" if how == "waitaof" and replicas == 0 else "on a replica"
            raise StoreUnavailable(f"Redis did not confirm the claim {what} in time; no change was started.")
        return said

    async def finish(
        self,
        claim: Claim,
        state: RequestState,
        outcome: str,
        at: datetime,
        *,
        after: str = "",
        after_mac: str = "",
        entry: HistoryEntry | None = None,
    ) -> FinishResult:
        answer = await self._run(
            "finish",
            claim.request.id,
            at,
            claim.token,
            state.value,
            outcome,
            after,
            after_mac,
            _encoded(entry),
            domain=claim.request.domain,
        )
        return FinishResult(answer)

    async def record_step(self, request_id: str, step: str, at: datetime, *, entry: HistoryEntry | None = None) -> None:
        self.round_trips += 1
        with store_errors():
            await self._redis.rpush(
                f"{self._req(request_id)}:history", (entry or HistoryEntry(Event.STEP, "", at, step)).encoded()
            )

    async def executing(self) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.smembers(f"{self._p}:executing")
        found = [await self.get(i) for i in sorted(ids)]
        return [r for r in found if r is not None]

    async def with_operator(self) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.smembers(f"{self._p}:with_operator")
        found = [await self.get(i) for i in sorted(ids)]
        return [r for r in found if r is not None]

    async def conclude(
        self,
        request_id: str,
        state: RequestState,
        outcome: str,
        at: datetime,
        *,
        after: str = "",
        after_mac: str = "",
        entry: HistoryEntry | None = None,
    ) -> bool:
        answer = await self._run("conclude", request_id, at, state.value, outcome, after, after_mac, _encoded(entry))
        return bool(answer == 1)

    async def _domain_of(self, request_id: str) -> str | None:
        with store_errors():
            domain = await self._redis.hget(self._req(request_id), "domain")
        return str(domain) if domain is not None else None

    async def flag_if_abandoned(
        self, request_id: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        domain = await self._domain_of(request_id)
        if domain is None:
            return False
        return bool(await self._run("attention", request_id, at, note, _encoded(entry), domain=domain) == 1)

    async def lock_holder(self, domain: str) -> str | None:
        with store_errors():
            holder = await self._redis.get(self._lock(domain))
        return str(holder).split(":", 1)[0] if holder else None

    async def sweep(self, at: datetime, retention: timedelta, audit_retention: timedelta | None = None) -> int:
        cutoff = ms(at - retention)
        forgotten = 0
        with store_errors():
            old = await self._redis.zrangebyscore(f"{self._p}:recent", "-inf", cutoff)
            for request_id in old:
                state = await self._redis.hget(self._req(request_id), "state")
                if state is not None and not RequestState(state).is_final:
                    continue
                req = self._req(request_id)
                await self._redis.delete(req, f"{req}:approvals", f"{req}:history", f"{req}:people", f"{req}:clicks")
                await self._redis.zrem(f"{self._p}:recent", request_id)
                forgotten += 1
            audit_cutoff = ms(at - (audit_retention or retention))
            await self._redis.xtrim(f"{self._p}:audit", minid=audit_cutoff, approximate=False)
        return forgotten

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, request_id: str) -> ChangeRequest | None:
        with store_errors():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._req(request_id))
                pipe.hgetall(f"{self._req(request_id)}:approvals")
                pipe.lrange(f"{self._req(request_id)}:history", 0, -1)
                fields, approvals, history = await pipe.execute()
        return with_history(request_from(fields, approvals), history) if fields else None

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]:
        with store_errors():
            entries = await self._redis.xrange(f"{self._p}:audit", count=None if request_id else count)
        out = [audit_entry(entry_id, f) for entry_id, f in entries if request_id is None or f["request"] == request_id]
        return out[-count:]

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]:
        with store_errors():
            ids = await self._redis.zrevrange(f"{self._p}:recent", 0, count - 1)
        found = [await self.get(i) for i in ids]
        return [r for r in found if r is not None]

    async def for_domain(self, domain: str, count: int = 10) -> Sequence[ChangeRequest]:
        # the recent index in pages: retention bounds it, and no second index has to be kept in step
        wanted = domain.lower()
        found: list[ChangeRequest] = []
        start, page = 0, 200
        while len(found) < count:
            with store_errors():
                ids = await self._redis.zrevrange(f"{self._p}:recent", start, start + page - 1)
            if not ids:
                break
            for request_id in ids:
                request = await self.get(request_id)
                if request is not None and request.domain == wanted:
                    found.append(request)
                    if len(found) == count:
                        break
            start += page
        return found

    async def close(self) -> None:
        await self._redis.aclose()
