"""Verifying approvers against Entra ID: device-code sign-in, ID token checks, group membership.

One sign-in per approver at a time: a second click while the first sign-in is open shows the same
code, and every click waiting on it learns the same outcome. A successful verification is kept
(as a timestamped identity, never a token) for the freshness window, so an approver signs in once
for several approvals in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.errors import EntraError, KerberosBotError
from bot.domain.verification import (
    ChatProfiles,
    DeviceCodePrompt,
    DeviceCodeSession,
    DeviceCodeSignIn,
    EntraGroupMembership,
    SignInAbandoned,
    SignInRefused,
    VerificationPolicy,
    VerificationStore,
    VerifiedIdentity,
    check_claims,
)
from bot.metrics import VERIFICATIONS

log = logging.getLogger(__name__)


class IdentityUnknown(KerberosBotError):
    """The chat user cannot be matched to an Entra user (no mapping, no profile e-mail)."""


@dataclass(frozen=True)
class VerificationOutcome:
    identity: VerifiedIdentity | None = None
    problem: str | None = None  # why the sign-in does not verify the approver
    abandoned: bool = False  # the sign-in never completed (expired, declined, called off)


@dataclass(frozen=True)
class PendingVerification:
    prompt: DeviceCodePrompt
    expected_user: str  # the Entra account the approver must sign in as
    new: bool  # False: the approver's earlier sign-in is still open; its code is shown again
    outcome: asyncio.Task[VerificationOutcome]


class ApproverVerification:
    def __init__(
        self,
        *,
        sign_in: DeviceCodeSignIn,
        membership: EntraGroupMembership,
        profiles: ChatProfiles,
        store: VerificationStore,
        policy: VerificationPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._sign_in = sign_in
        self._membership = membership
        self._profiles = profiles
        self._store = store
        self.policy = policy
        self._clock = clock
        self._open: dict[str, tuple[DeviceCodeSession, PendingVerification]] = {}

    async def fresh(self, chat_user: str) -> VerifiedIdentity | None:
        """The approver's verified identity if they signed in within the freshness window."""
        identity = await self._store.recall(chat_user)
        if identity is None or self._clock() - identity.signed_in_at >= self.policy.freshness:
            return None
        return identity

    async def expected_user(self, chat_user: str) -> str:
        mapped = (self.policy.identities or {}).get(chat_user)
        if mapped:
            return mapped
        email = await self._profiles.email_of(chat_user)
        if not email:
            raise IdentityUnknown(
                "Your Slack account cannot be matched to an Entra user: your Slack profile shows no e-mail "
                "address and the bot's configuration maps none to you ([approvals.verification.identities])."
            )
        return email

    async def start(self, chat_user: str) -> PendingVerification:
        """Begin (or rejoin) the approver's device-code sign-in."""
        if chat_user in self._open:
            session, pending = self._open[chat_user]
            return PendingVerification(pending.prompt, pending.expected_user, False, pending.outcome)
        expected = await self.expected_user(chat_user)
        session = await self._sign_in.start()
        outcome = asyncio.create_task(self._finish(chat_user, session, expected), name=f"verify-{chat_user}")
        pending = PendingVerification(session.prompt, expected, True, outcome)
        self._open[chat_user] = (session, pending)
        return pending

    async def _finish(self, chat_user: str, session: DeviceCodeSession, expected: str) -> VerificationOutcome:
        try:
            claims = await session.claims()
            object_id, upn, mfa = check_claims(claims, self.policy, expected)
            if not await self._membership.is_transitive_member(object_id, self.policy.approver_group_id):
                raise SignInRefused(f"{upn} is not a member of the Entra approver group")
            identity = VerifiedIdentity(object_id, upn, self._clock(), mfa)
            await self._store.remember(chat_user, identity, self.policy.freshness)
            log.info("approver %s verified as %s (%s)", chat_user, upn, object_id)
            VERIFICATIONS.labels("verified").inc()
            return VerificationOutcome(identity=identity)
        except SignInRefused as exc:
            log.warning("approver %s not verified: %s", chat_user, exc.user_message)
            VERIFICATIONS.labels("refused").inc()
            return VerificationOutcome(problem=exc.user_message)
        except SignInAbandoned as exc:
            VERIFICATIONS.labels("abandoned").inc()
            return VerificationOutcome(problem=exc.user_message, abandoned=True)
        except EntraError as exc:
            VERIFICATIONS.labels("error").inc()
            return VerificationOutcome(problem=f"Entra ID could not complete the check: {exc.user_message}")
        except asyncio.CancelledError:
            session.cancel()
            raise
        finally:
            self._open.pop(chat_user, None)

    def in_progress(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        """Call off every open sign-in (shutdown); their clicks learn they were abandoned."""
        for session, pending in list(self._open.values()):
            session.cancel()
            pending.outcome.cancel()
        for _session, pending in list(self._open.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending.outcome
        self._open.clear()  # a task cancelled before it ran never reached its own clean-up
