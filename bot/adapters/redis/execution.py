"""Carrying a change out, in Redis: the work stream and the claim (the request and its domain's lock in one
script, with a lease), the lease kept and proven, the claim made durable, the journal, the finish, the
recovery of a dead worker's request, and a change handed to an operator and concluded."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.codec import (
    iso,
    ms,
)
from bot.adapters.redis.store_base import WORKERS, StoreBase, encoded_entry
from bot.domain.approvals import (
    ChangeRequest,
    Claim,
    FinishResult,
    RequestState,
)
from bot.domain.errors import StoreUnavailable
from bot.domain.history import Event, HistoryEntry


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


class ExecutionSteps(StoreBase):
    """The executor's side of ``RedisApprovalStore``."""

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
            encoded_entry(entry),
            domain=claim.request.domain,
        )
        return bool(answer == 1)

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
            encoded_entry(entry),
            domain=claim.request.domain,
        )
        return FinishResult(answer)

    async def record_step(self, request_id: str, step: str, at: datetime, *, entry: HistoryEntry | None = None) -> None:
        # a script with this call's own key, not an RPUSH: sent again after a lost reply, it appends nothing twice
        await self._run("step", request_id, at, (entry or HistoryEntry(Event.STEP, "", at, step)).encoded())

    async def executing(self) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.smembers(f"{self._p}:executing")
        found = await self.get_many(sorted(ids))
        return [r for r in found if r is not None]

    async def with_operator(self) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.smembers(f"{self._p}:with_operator")
        found = await self.get_many(sorted(ids))
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
        answer = await self._run(
            "conclude", request_id, at, state.value, outcome, after, after_mac, encoded_entry(entry)
        )
        return bool(answer == 1)

    async def hand_over_again(self, request_id: str, history_seen: int, at: datetime, entry: HistoryEntry) -> bool:
        # the audit entry carries the new handover whole (who, their account, until when, the command)
        answer = await self._run(
            "take_over", request_id, at, str(history_seen), entry.encoded(), entry.actor, entry.detail
        )
        return bool(answer == 1)

    async def flag_if_abandoned(
        self, request_id: str, note: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> bool:
        domain = await self._domain_of(request_id)
        if domain is None:
            return False
        return bool(await self._run("attention", request_id, at, note, encoded_entry(entry), domain=domain) == 1)

    async def lock_holder(self, domain: str) -> str | None:
        with store_errors():
            holder = await self._redis.get(self._lock(domain))
        return str(holder).split(":", 1)[0] if holder else None
