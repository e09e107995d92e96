"""Approvals bound to a verified Entra identity, not only to a chat account.

A click in Slack proves only that someone holds the Slack session. For the dangerous actions the
approver must also sign in to Entra ID (device-code flow, with MFA) within a freshness window; the
sign-in's ID token is checked once (tenant, audience, issuer, MFA, the expected user, membership of
the Entra approver group) and only the outcome survives, as a timestamped record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.domain.errors import KerberosBotError


@dataclass(frozen=True)
class VerifiedIdentity:
    """Who an approver proved to be, and when; nothing of the tokens themselves."""

    object_id: str  # Entra user object id (``oid``)
    upn: str
    signed_in_at: datetime
    mfa: bool

    def describe(self) -> str:
        return f"verified as {self.upn}" + (", MFA" if self.mfa else "")


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What the approver is shown: where to go and which code to type there."""

    user_code: str
    verification_uri: str
    expires_at: datetime
    message: str = ""


class SignInRefused(KerberosBotError):
    """The sign-in finished but does not make the user a verified approver (the reason says why)."""


class SignInAbandoned(KerberosBotError):
    """The sign-in did not finish: the code expired, the user declined, or it was called off."""


class DeviceCodeSession(Protocol):
    """One device-code sign-in in progress."""

    @property
    def prompt(self) -> DeviceCodePrompt: ...

    async def claims(self) -> Mapping[str, Any]:
        """Wait for the sign-in; the ID token's claims, validated for this app (audience, issuer,
        lifetime). Raises ``SignInAbandoned`` (expired, declined, cancelled) or ``EntraError``."""
        ...

    def cancel(self) -> None: ...


class DeviceCodeSignIn(Protocol):
    """Starts device-code sign-ins with the bot's public client app (msal)."""

    async def start(self) -> DeviceCodeSession: ...


class EntraGroupMembership(Protocol):
    async def is_transitive_member(self, user_object_id: str, group_id: str) -> bool:
        """True when the user is in the group directly or through nested groups."""
        ...


class ChatProfiles(Protocol):
    """The e-mail address of a chat user's profile, to match them to their Entra account."""

    async def email_of(self, chat_user: str) -> str | None: ...


class VerificationStore(Protocol):
    """Remembers a successful verification for the freshness window; nothing else."""

    async def remember(self, chat_user: str, identity: VerifiedIdentity, ttl: timedelta) -> None: ...

    async def recall(self, chat_user: str) -> VerifiedIdentity | None: ...


@dataclass(frozen=True)
class VerificationPolicy:
    tenant_id: str
    approver_group_id: str
    freshness: timedelta = timedelta(minutes=10)
    # chat user id -> UPN; checked before the profile e-mail
    identities: Mapping[str, str] | None = None


def check_claims(claims: Mapping[str, Any], policy: VerificationPolicy, expected_user: str) -> tuple[str, str, bool]:
    """(object id, UPN, mfa) when the ID token names the expected user of our tenant with MFA.

    Raises ``SignInRefused`` with the reason otherwise. Group membership is checked separately
    (it needs Graph).
    """
    tenant = str(claims.get("tid") or "")
    if tenant.lower() != policy.tenant_id.lower():
        raise SignInRefused(f"the sign-in was to another tenant ({tenant or 'none'}), not the bot's tenant")
    object_id = str(claims.get("oid") or "")
    if not object_id:
        raise SignInRefused("the ID token names no user object (oid)")
    upn = str(claims.get("preferred_username") or claims.get("upn") or claims.get("email") or "")
    names = {
        str(claims.get(key)).lower() for key in ("preferred_username", "upn", "email", "unique_name") if claims.get(key)
    }
    if expected_user.lower() not in names:
        raise SignInRefused(
            f"you signed in as {upn or 'an unnamed account'}, but this Slack account belongs to {expected_user}"
        )
    methods = claims.get("amr") or []
    mfa = isinstance(methods, list) and "mfa" in methods
    if not mfa:
        raise SignInRefused(f"the sign-in of {upn} did not use multi-factor authentication (no 'mfa' in amr)")
    return object_id, upn, mfa
