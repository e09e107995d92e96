"""The suites' names for the product's in-memory approval store, sign-in tickets and audit trail
(``bot.adapters.memory``)."""

from __future__ import annotations

from bot.adapters.memory.approvals import MemoryApprovalStore
from bot.adapters.memory.ports import MemoryAuditTrail, MemorySignInTickets

FakeApprovalStore = MemoryApprovalStore
FakeSignInTickets = MemorySignInTickets
FakeAuditTrail = MemoryAuditTrail
