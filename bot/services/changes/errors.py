"""The change engine's own refusals (drawn in bot/domain/errors.py's tree)."""

from __future__ import annotations

from bot.domain.errors import KerberosBotError, UsageError


class NotAllowed(UsageError):
    pass


class RateLimited(UsageError):
    """A user asks or clicks faster than the configured rate; nothing was recorded."""


class RefusedAtExecution(KerberosBotError):
    """A claimed request does not hold up against the stored policy any more; nothing was changed."""


class ForgedRecord(RefusedAtExecution):
    """The stored request or an approval does not carry the bot's MAC: something else wrote to Redis."""


class LeaseLost(RefusedAtExecution):
    """The worker's claim no longer holds right before the module call; it stops without acting."""
