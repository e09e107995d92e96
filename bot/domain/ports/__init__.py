"""Ports: what the services need from the outside world, by what they reach: the world the bot changes
(``world``), what replicas share (``shared``), the requests (``store``) and the audit trail (``audit``).

Adapters (``bot.adapters``) implement these Protocols without inheriting from them; tests use
in-memory fakes that implement the same Protocols. Every method is async: adapters whose
libraries block (ldap3, msal) run them in a worker thread so one slow DC never stalls the bot.
"""

from __future__ import annotations

from bot.domain.ports.audit import AuditSink, AuditTrail
from bot.domain.ports.shared import (
    ChatOrigins,
    CommandQueue,
    DeferredCommand,
    Freezes,
    Leadership,
    NoticePreferences,
    RateLimiter,
    ReplayGuard,
    SchedulerMemory,
)
from bot.domain.ports.store import ApprovalStore, RequestWatcher
from bot.domain.ports.world import ActiveDirectory, EntraDirectory, KerberosModule, SetServerOptions, each_server

__all__ = [
    "ActiveDirectory",
    "ApprovalStore",
    "AuditSink",
    "AuditTrail",
    "ChatOrigins",
    "CommandQueue",
    "DeferredCommand",
    "EntraDirectory",
    "Freezes",
    "KerberosModule",
    "Leadership",
    "NoticePreferences",
    "RateLimiter",
    "ReplayGuard",
    "RequestWatcher",
    "SchedulerMemory",
    "SetServerOptions",
    "each_server",
]
