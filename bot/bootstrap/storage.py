"""The shared state the bot keeps, as one bundle of ports: Redis in production (``redis_storage``); a
test or a run without Redis gives its own ports, or none (then the changing actions are off)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

import redis.asyncio as aioredis

from bot.adapters.memory.approvals import MemoryApprovalStore
from bot.adapters.memory.ports import (
    MemoryAuditTrail,
    MemoryCommandQueue,
    MemoryFreezes,
    MemoryLeadership,
    MemoryNoticePreferences,
    MemoryRateLimiter,
    MemoryReplayGuard,
    MemorySchedulerMemory,
    MemorySignInTickets,
)
from bot.adapters.redis.audit import RedisAuditTrail
from bot.adapters.redis.commands import RedisCommandQueue
from bot.adapters.redis.freezes import RedisFreezes
from bot.adapters.redis.lifecycle import RedisLeadership, RedisSchedulerMemory
from bot.adapters.redis.preferences import RedisNoticePreferences
from bot.adapters.redis.rate import RedisRateLimiter
from bot.adapters.redis.replay import RedisReplayGuard
from bot.adapters.redis.sign_in_tickets import RedisSignInTickets
from bot.adapters.redis.store import RedisApprovalStore
from bot.bootstrap.adapters import audit_sinks
from bot.bootstrap.policy import integrity_signer
from bot.config import BotConfig
from bot.domain.ports import (
    ApprovalStore,
    AuditTrail,
    CommandQueue,
    Freezes,
    Leadership,
    NoticePreferences,
    RateLimiter,
    ReplayGuard,
    SchedulerMemory,
)
from bot.domain.verification import SignInTickets
from bot.services.audit import AuditForwarder
from bot.services.command_queue import SignedCommandQueue
from bot.services.scheduler_memory import SignedMemory


@dataclass(frozen=True)
class Storage:
    """Each storage port, None where there is none."""

    store: ApprovalStore | None = None  # the change requests and their audit
    tickets: SignInTickets | None = None  # the approvers' sign-in links
    limiter: RateLimiter | None = None
    command_queue: CommandQueue | None = None  # commands' follow-up work, for the command workers
    replay_guard: ReplayGuard | None = None  # a Slack request seen before is refused
    leadership: Leadership | None = None  # who runs the scheduler, across replicas
    memory: SchedulerMemory | None = None  # what the scheduler filed and saw
    freezes: Freezes | None = None
    preferences: NoticePreferences | None = None  # who turned their direct messages off
    audit_trail: AuditTrail | None = None  # every request's audit entries, in order (export, forwarding)
    audit: AuditForwarder | None = None  # [audit] names a SIEM sink: the trail forwarded to it
    # readiness checks of these ports beyond reaching them (name -> a check that raises when not ready)
    readiness: Mapping[str, Callable[[], Awaitable[None]]] | None = None

    def over(self, base: Storage) -> Storage:
        """These ports, and ``base``'s where these have none."""
        return replace(base, **{f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None})


def memory_storage(config: BotConfig, clock: Callable[[], datetime]) -> Storage:
    """Every storage port in this process's memory (the contract-tested in-memory adapters): one process,
    nothing survives a restart; for a trial or a demo, never for two replicas."""
    store = MemoryApprovalStore(clock)
    return Storage(
        store=store,
        tickets=MemorySignInTickets(clock),
        limiter=MemoryRateLimiter(),
        command_queue=SignedCommandQueue(MemoryCommandQueue(), integrity_signer(config)),
        replay_guard=MemoryReplayGuard(clock),
        leadership=MemoryLeadership(clock),
        memory=SignedMemory(MemorySchedulerMemory(), integrity_signer(config)),
        freezes=MemoryFreezes(),
        preferences=MemoryNoticePreferences(),
        audit_trail=MemoryAuditTrail(store),
    )


def redis_audit_trail(client: aioredis.Redis, prefix: str) -> AuditTrail:
    """The audit trail alone (``kerberos-bot audit export`` needs nothing else)."""
    return RedisAuditTrail(client, prefix)


def redis_storage(config: BotConfig, client: aioredis.Redis, prefix: str) -> Storage:
    trail, audit = redis_audit_trail(client, prefix), None
    if sinks := audit_sinks(config):
        leadership = RedisLeadership(client, prefix, job="audit")
        audit = AuditForwarder(trail, sinks, leadership, f"audit-{uuid.uuid4().hex[:8]}")
    changes = config.changes
    store = RedisApprovalStore(
        client,
        prefix,
        confirm_replicas=changes.confirm_replicas,
        confirm_timeout=timedelta(milliseconds=changes.confirm_timeout_ms),
    )
    readiness = {"redis replicas": store.confirmation} if changes.confirm_replicas else None
    return Storage(
        store=store,
        tickets=RedisSignInTickets(client, prefix),
        limiter=RedisRateLimiter(client, prefix),
        command_queue=SignedCommandQueue(RedisCommandQueue(client, prefix), integrity_signer(config)),
        replay_guard=RedisReplayGuard(client, prefix),
        leadership=RedisLeadership(client, prefix),
        memory=SignedMemory(RedisSchedulerMemory(client, prefix), integrity_signer(config)),
        freezes=RedisFreezes(client, prefix),
        preferences=RedisNoticePreferences(client, prefix),
        audit_trail=trail,
        audit=audit,
        readiness=readiness,
    )
