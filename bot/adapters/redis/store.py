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
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.adapters.redis.client import store_errors
from bot.adapters.redis.codec import (
    allowed_list,
    approval_value,
    audit_entry,
    iso,
    ms,
    pairs,
    request_from,
)
from bot.adapters.redis.execution import ExecutionSteps
from bot.adapters.redis.keys import call_key
from bot.adapters.redis.store_base import encoded_entry
from bot.domain.approvals import (
    Action,
    AuditEntry,
    ChangeRequest,
    DecisionResult,
    RequestState,
    Verdict,
)
from bot.domain.history import HistoryEntry
from bot.domain.verification import VerifiedIdentity


class RedisApprovalStore(ExecutionSteps):
    """Implements ``bot.domain.ports.ApprovalStore``: requests, decisions and reads here, the steps of
    carrying a change out in ``ExecutionSteps`` (``execution.py``), the groundwork in ``StoreBase``."""

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
            encoded_entry(entry),
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
                encoded_entry(entry),
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
            await self._told(
                "deny", request_id, at, approver, origin, allowed_list(allowed), reason, encoded_entry(entry)
            )
        )

    async def cancel(
        self, request_id: str, requester: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        return self._result(await self._told("cancel", request_id, at, requester, "", "*", encoded_entry(entry)))

    async def note(self, request_id: str, event: str, actor: str | None, detail: str, at: datetime) -> None:
        # a script with this call's own key, not an XADD: sent again after a lost reply, it audits nothing twice
        await self._run("note", request_id, at, event, actor or "", detail)

    async def refuse(self, request_id: str, actor: str, why: str, at: datetime) -> None:
        await self._run("note", request_id, at, "refused", actor, why)

    async def expire_due(self, at: datetime) -> list[str]:
        with store_errors():
            due = await self._redis.zrangebyscore(f"{self._p}:pending", "-inf", ms(at))
        return [rid for rid in due if await self._run("expire", rid, at) == 1]

    async def pending(self, count: int = 200) -> list[ChangeRequest]:
        with store_errors():
            ids = await self._redis.zrange(f"{self._p}:pending", 0, count - 1)
        found = await self.get_many(ids)
        return [r for r in found if r is not None and r.state == RequestState.PENDING]

    async def mark_reminded(self, request_id: str, number: int) -> bool:
        self.round_trips += 1
        with store_errors():
            call = call_key(self._req(request_id))
            return bool(await self._remind(keys=[self._req(request_id), call], args=[str(number)]))

    async def withdraw(
        self, request_id: str, actor: str, at: datetime, *, entry: HistoryEntry | None = None
    ) -> DecisionResult:
        answer, kept = await self._told("withdraw", request_id, at, actor, encoded_entry(entry))
        request = await self.get(request_id)
        return DecisionResult(Verdict(answer), request, len(request.approvals) if request else 0, kept)

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

    async def audit(self, request_id: str | None = None, count: int = 100) -> list[AuditEntry]:
        with store_errors():
            entries = await self._redis.xrange(f"{self._p}:audit", count=None if request_id else count)
        out = [audit_entry(entry_id, f) for entry_id, f in entries if request_id is None or f["request"] == request_id]
        return out[-count:]

    async def recent(self, count: int = 20) -> Sequence[ChangeRequest]:
        with store_errors():
            ids = await self._redis.zrevrange(f"{self._p}:recent", 0, count - 1)
        found = await self.get_many(ids)
        return [r for r in found if r is not None]

    async def for_domain(self, domain: str, count: int = 10) -> Sequence[ChangeRequest]:
        # the recent index in pages: retention bounds it, and no second index has to be kept in step
        wanted = domain.lower()
        found: list[ChangeRequest] = []
        start, page = 0, 100
        while len(found) < count:
            with store_errors():
                ids = await self._redis.zrevrange(f"{self._p}:recent", start, start + page - 1)
            if not ids:
                break
            found += [r for r in await self.get_many(ids) if r is not None and r.domain == wanted]
            start += page
        return found[:count]
