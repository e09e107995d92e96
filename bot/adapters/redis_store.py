"""Change requests in Redis: every transition is one Lua script, so one round trip per click and
no interleaving between the check and the change, whatever the number of clicks, approvers, bot
replicas or Slack retries.

Keys (``P`` is the configured prefix; a single Redis, not a cluster, since the streams are shared):
    P:req:<id>             hash: the request
    P:req:<id>:approvals   hash: approver -> time, or JSON with the verified Entra identity; its size is
                           the approval count
    P:verified:<user>      string (JSON, expires with the freshness window): a user's last verified sign-in
    P:pending              sorted set: pending request ids by expiry (ms)
    P:recent               sorted set: every request id by creation (ms)
    P:work                 stream: approved requests for the workers (consumer group "workers")
    P:audit                stream: append-only trail of every event
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bot.domain.approvals import (
    Action,
    Approval,
    AuditEntry,
    ChangeRequest,
    DecisionResult,
    RequestState,
    Verdict,
)
from bot.domain.errors import KerberosBotError
from bot.domain.verification import VerifiedIdentity

WORKERS = "workers"
_AUDIT_FIELDS = frozenset({"request", "event", "actor", "at", "detail"})

_AUDIT = """
local function answer(verdict)
  return {verdict, redis.call('HLEN', KEYS[2]), redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
end
local function audit(event, actor, detail)
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', event, 'actor', actor, 'at', ARGV[3],
             'detail', detail)
end
"""

# KEYS: req, approvals, pending, work, audit   ARGV: id, now_ms, now_iso, actor, [reason]
_PENDING_CHECKS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'not_found', 0} end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then
  return answer('not_pending')
end
if tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms')) then
  redis.call('HSET', KEYS[1], 'state', 'expired', 'decided_at', ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[1])
  audit('expired', '', '')
  return answer('expired')
end
"""

APPROVE = (
    _AUDIT
    + _PENDING_CHECKS
    + """
if redis.call('HGET', KEYS[1], 'requester') == ARGV[4] then
  audit('refused', ARGV[4], 'the requester cannot approve their own request')
  return answer('self_approval')
end
if redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[5]) == 0 then
  return answer('duplicate')
end
if ARGV[7] ~= '' then
  redis.call('XADD', KEYS[5], '*', 'request', ARGV[1], 'event', 'approved', 'actor', ARGV[4], 'at', ARGV[3],
             'detail', ARGV[6], 'entra_oid', ARGV[7], 'entra_upn', ARGV[8], 'entra_signed_in_at', ARGV[9])
else
  audit('approved', ARGV[4], '')
end
local n = redis.call('HLEN', KEYS[2])
if n >= tonumber(redis.call('HGET', KEYS[1], 'approvals_required')) then
  redis.call('HSET', KEYS[1], 'state', 'approved')
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('XADD', KEYS[4], '*', 'request', ARGV[1])
  return answer('approved')
end
return answer('recorded')
"""
)

DENY = (
    _AUDIT
    + _PENDING_CHECKS
    + """
redis.call('HSET', KEYS[1], 'state', 'denied', 'decided_by', ARGV[4], 'decision_reason', ARGV[5],
           'decided_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
audit('denied', ARGV[4], ARGV[5])
return answer('denied')
"""
)

CANCEL = (
    _AUDIT
    + _PENDING_CHECKS
    + """
if redis.call('HGET', KEYS[1], 'requester') ~= ARGV[4] then
  audit('refused', ARGV[4], 'only the requester can cancel')
  return answer('not_requester')
end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'decided_by', ARGV[4], 'decided_at', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
audit('cancelled', ARGV[4], '')
return answer('cancelled')
"""
)

# KEYS: req, approvals, pending, work, audit   ARGV: id, now_ms, now_iso
EXPIRE = (
    _AUDIT
    + """
if redis.call('HGET', KEYS[1], 'state') == 'pending'
   and tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms')) then
  redis.call('HSET', KEYS[1], 'state', 'expired', 'decided_at', ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[1])
  audit('expired', '', '')
  return 1
end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then redis.call('ZREM', KEYS[3], ARGV[1]) end
return 0
"""
)

# approved -> executing, once.   ARGV: id, now_ms, now_iso, consumer
CLAIM = (
    _AUDIT
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'approved' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'executing', 'claimed_by', ARGV[4], 'claimed_at', ARGV[3])
redis.call('SADD', KEYS[6], ARGV[1])
audit('claimed', ARGV[4], '')
return 1
"""
)

# executing -> attention (a dead worker's request).   ARGV: id, now_ms, now_iso, note
ATTENTION = (
    _AUDIT
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'executing' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'attention', 'outcome', ARGV[4], 'finished_at', ARGV[3])
redis.call('SREM', KEYS[6], ARGV[1])
audit('attention', '', ARGV[4])
return 1
"""
)

# executing -> succeeded | failed.   ARGV: id, now_ms, now_iso, final state, outcome
FINISH = (
    _AUDIT
    + """
if redis.call('HGET', KEYS[1], 'state') ~= 'executing' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'outcome', ARGV[5], 'finished_at', ARGV[3])
redis.call('SREM', KEYS[6], ARGV[1])
audit(ARGV[4], '', ARGV[5])
return 1
"""
)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _approval_value(at: datetime, identity: VerifiedIdentity | None) -> str:
    if identity is None:
        return _iso(at)
    return json.dumps(
        {
            "at": _iso(at),
            "oid": identity.object_id,
            "upn": identity.upn,
            "signed_in_at": _iso(identity.signed_in_at),
            "mfa": identity.mfa,
        }
    )


def _identity_from(data: dict[str, Any]) -> VerifiedIdentity:
    return VerifiedIdentity(
        object_id=str(data["oid"]),
        upn=str(data["upn"]),
        signed_in_at=datetime.fromisoformat(str(data["signed_in_at"])),
        mfa=bool(data.get("mfa")),
    )


def _approval_from(approver: str, value: str) -> Approval:
    if not value.startswith("{"):
        return Approval(approver, datetime.fromisoformat(value))
    data = json.loads(value)
    return Approval(approver, datetime.fromisoformat(data["at"]), _identity_from(data))


def _request_from(fields: dict[str, str], approvals: dict[str, str]) -> ChangeRequest:
    return ChangeRequest(
        id=fields["id"],
        action=Action(fields["action"]),
        domain=fields["domain"],
        requester=fields["requester"],
        reason=fields["reason"],
        plan=tuple(json.loads(fields["plan"])),
        created_at=datetime.fromisoformat(fields["created_at"]),
        expires_at=datetime.fromisoformat(fields["expires_at"]),
        approvals_required=int(fields["approvals_required"]),
        state=RequestState(fields["state"]),
        approvals=tuple(sorted((_approval_from(who, value) for who, value in approvals.items()), key=lambda a: a.at)),
        decided_by=fields.get("decided_by") or None,
        decision_reason=fields.get("decision_reason") or None,
        decided_at=_time(fields.get("decided_at")),
        channel=fields.get("channel") or None,
        message_ts=fields.get("message_ts") or None,
        outcome=fields.get("outcome") or None,
        expected_key_version=int(fields["expected_key_version"]) if fields.get("expected_key_version") else None,
        top_level_names=tuple(n for n in fields.get("top_level_names", "").split(",") if n),
    )


class StoreUnavailable(KerberosBotError):
    pass


class RedisApprovalStore:
    """Implements ``bot.domain.approvals.ApprovalStore``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kerberos-bot") -> None:
        # redis-py's annotations ignore decode_responses=True; every reply here is str by construction
        self._redis: Any = client
        self._p = prefix
        self._scripts = {
            name: client.register_script(source)
            for name, source in (
                ("approve", APPROVE),
                ("deny", DENY),
                ("cancel", CANCEL),
                ("expire", EXPIRE),
                ("claim", CLAIM),
                ("attention", ATTENTION),
                ("finish", FINISH),
            )
        }
        self._group_ready = False
        self.round_trips = 0  # commands sent to Redis, for the benchmark

    @classmethod
    def from_url(cls, url: str, prefix: str = "kerberos-bot") -> RedisApprovalStore:
        return cls(aioredis.Redis.from_url(url, decode_responses=True), prefix)

    # -- keys -----------------------------------------------------------------------------------
    def _req(self, request_id: str) -> str:
        return f"{self._p}:req:{request_id}"

    def _keys(self, request_id: str) -> list[str]:
        return [
            self._req(request_id),
            f"{self._req(request_id)}:approvals",
            f"{self._p}:pending",
            f"{self._p}:work",
            f"{self._p}:audit",
            f"{self._p}:executing",
        ]

    async def _run(self, script: str, request_id: str, at: datetime, *extra: str) -> Any:
        self.round_trips += 1
        try:
            return await self._scripts[script](
                keys=self._keys(request_id), args=[request_id, _ms(at), _iso(at), *extra]
            )
        except RedisError as exc:
            raise StoreUnavailable("The approval store (Redis) is unavailable; nothing was changed.") from exc

    # -- transitions ----------------------------------------------------------------------------
    async def create(self, request: ChangeRequest) -> None:
        fields = {
            "id": request.id,
            "action": request.action.value,
            "domain": request.domain,
            "requester": request.requester,
            "reason": request.reason,
            "plan": json.dumps(list(request.plan)),
            "created_at": _iso(request.created_at),
            "expires_at": _iso(request.expires_at),
            "expires_at_ms": str(_ms(request.expires_at)),
            "approvals_required": str(request.approvals_required),
            "state": RequestState.PENDING.value,
            "channel": request.channel or "",
            "message_ts": request.message_ts or "",
            "expected_key_version": "" if request.expected_key_version is None else str(request.expected_key_version),
            "top_level_names": ",".join(request.top_level_names),
        }
        self.round_trips += 1
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._req(request.id), mapping=fields)
                pipe.zadd(f"{self._p}:pending", {request.id: _ms(request.expires_at)})
                pipe.zadd(f"{self._p}:recent", {request.id: _ms(request.created_at)})
                pipe.xadd(
                    f"{self._p}:audit",
                    {
                        "request": request.id,
                        "event": "requested",
                        "actor": request.requester,
                        "at": _iso(request.created_at),
                        "detail": request.reason,
                    },
                )
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable("The approval store (Redis) is unavailable; the request was not recorded.") from exc

    async def set_message(self, request_id: str, channel: str, message_ts: str) -> None:
        await self._redis.hset(self._req(request_id), mapping={"channel": channel, "message_ts": message_ts})

    @staticmethod
    def _result(answer: list[Any]) -> DecisionResult:
        """The script's answer carries the request itself: the click is one round trip."""
        verdict, count = Verdict(answer[0]), int(answer[1])
        if verdict == Verdict.NOT_FOUND:
            return DecisionResult(verdict, None, 0)
        return DecisionResult(verdict, _request_from(_pairs(answer[2]), _pairs(answer[3])), count)

    async def approve(
        self, request_id: str, approver: str, at: datetime, identity: VerifiedIdentity | None = None
    ) -> DecisionResult:
        verified = (
            (identity.describe(), identity.object_id, identity.upn, _iso(identity.signed_in_at))
            if identity
            else ("", "", "", "")
        )
        return self._result(
            await self._run("approve", request_id, at, approver, _approval_value(at, identity), *verified)
        )

    async def deny(self, request_id: str, approver: str, reason: str, at: datetime) -> DecisionResult:
        return self._result(await self._run("deny", request_id, at, approver, reason))

    async def cancel(self, request_id: str, requester: str, at: datetime) -> DecisionResult:
        return self._result(await self._run("cancel", request_id, at, requester))

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        self.round_trips += 1
        await self._redis.xadd(
            f"{self._p}:audit",
            {"request": request_id, "event": "refused", "actor": actor, "at": _iso(at), "detail": why},
        )

    async def expire_due(self, at: datetime) -> list[str]:
        due = await self._redis.zrangebyscore(f"{self._p}:pending", "-inf", _ms(at))
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

    async def next_approved(self, consumer: str, block_ms: int = 0) -> ChangeRequest | None:
        await self._ensure_group()
        answer = await self._redis.xreadgroup(
            WORKERS, consumer, {f"{self._p}:work": ">"}, count=1, block=block_ms or None
        )
        for _stream, messages in answer or []:
            for message_id, fields in messages:
                request_id = fields["request"]
                claimed = await self._run("claim", request_id, datetime.now(UTC), consumer)
                await self._redis.xack(f"{self._p}:work", WORKERS, message_id)
                if claimed == 1:
                    return await self.get(request_id)
        return None

    async def finish(self, request_id: str, succeeded: bool, outcome: str, at: datetime) -> None:
        state = RequestState.SUCCEEDED if succeeded else RequestState.FAILED
        await self._run("finish", request_id, at, state.value, outcome)

    async def record_step(self, request_id: str, step: str, at: datetime) -> None:
        self.round_trips += 1
        await self._redis.rpush(f"{self._req(request_id)}:journal", f"{_iso(at)} {step}")

    async def executing(self) -> list[ChangeRequest]:
        ids = await self._redis.smembers(f"{self._p}:executing")
        found = [await self.get(i) for i in sorted(ids)]
        return [r for r in found if r is not None]

    async def flag_attention(self, request_id: str, note: str, at: datetime) -> bool:
        return bool(await self._run("attention", request_id, at, note) == 1)

    # -- reads ----------------------------------------------------------------------------------
    async def get(self, request_id: str) -> ChangeRequest | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._req(request_id))
            pipe.hgetall(f"{self._req(request_id)}:approvals")
            pipe.lrange(f"{self._req(request_id)}:journal", 0, -1)
            fields, approvals, journal = await pipe.execute()
        return replace(_request_from(fields, approvals), journal=tuple(journal)) if fields else None

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]:
        entries = await self._redis.xrange(f"{self._p}:audit", count=None if request_id else count)
        out = [
            AuditEntry(
                entry_id,
                f["request"],
                f["event"],
                f.get("actor") or None,
                datetime.fromisoformat(f["at"]),
                f.get("detail", ""),
                {k: v for k, v in f.items() if k not in _AUDIT_FIELDS},
            )
            for entry_id, f in entries
            if request_id is None or f["request"] == request_id
        ]
        return out[-count:]

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]:
        ids = await self._redis.zrevrange(f"{self._p}:recent", 0, count - 1)
        found = [await self.get(i) for i in ids]
        return [r for r in found if r is not None]

    async def close(self) -> None:
        await self._redis.aclose()


RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisDomainLocks:
    """``SET NX PX`` per domain; released only by its holder (compare-and-delete in Lua)."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kerberos-bot") -> None:
        self._redis: Any = client
        self._p = prefix
        self._release = client.register_script(RELEASE)

    async def acquire(self, domain: str, ttl: timedelta) -> str | None:
        token = uuid.uuid4().hex
        ok = await self._redis.set(f"{self._p}:lock:{domain}", token, nx=True, px=int(ttl.total_seconds() * 1000))
        return token if ok else None

    async def release(self, domain: str, token: str) -> None:
        await self._release(keys=[f"{self._p}:lock:{domain}"], args=[token])

    async def held(self, domain: str) -> bool:
        return bool(await self._redis.exists(f"{self._p}:lock:{domain}"))


class RedisVerifications:
    """Implements ``bot.domain.verification.VerificationStore``: the outcome of a verified sign-in,
    kept only for the freshness window (the key expires with it). Never a token."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kerberos-bot") -> None:
        self._redis: Any = client
        self._p = prefix

    def _key(self, chat_user: str) -> str:
        return f"{self._p}:verified:{chat_user}"

    async def remember(self, chat_user: str, identity: VerifiedIdentity, ttl: timedelta) -> None:
        value = json.loads(_approval_value(identity.signed_in_at, identity))
        await self._redis.set(self._key(chat_user), json.dumps(value), px=max(1, int(ttl.total_seconds() * 1000)))

    async def recall(self, chat_user: str) -> VerifiedIdentity | None:
        raw = await self._redis.get(self._key(chat_user))
        return _identity_from(json.loads(raw)) if raw else None

    async def forget(self, chat_user: str) -> None:
        await self._redis.delete(self._key(chat_user))
