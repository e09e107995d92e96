"""Approvals bound to a verified Entra identity, not only to a chat account.

A click in Slack proves only that someone holds the Slack session. For the dangerous actions the
approver must also sign in to Entra ID with MFA, once for each approval: in a browser (authorization
code flow with PKCE, the default) or, where the bot has no public listener, with a device code. The
sign-in is bound to one request, one action and one chat user; its ID token is checked once
(tenant, audience, issuer, nonce, the sign-in's own time, MFA, an authentication context if asked
for, the expected user, membership of the Entra approver group) and only the outcome survives, as
the approval it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


@dataclass(frozen=True)
class BrowserSignInStart:
    """A browser sign-in that was set up: the link for the approver and what the callback needs."""

    auth_uri: str
    state: str
    flow: Mapping[str, Any]  # msal's flow (PKCE verifier, nonce): kept server-side, never in the link


class BrowserSignIn(Protocol):
    """The authorization code flow with PKCE (msal) against the approvers' app registration."""

    async def start(
        self, *, redirect_uri: str, login_hint: str, max_age: timedelta, auth_context: str | None
    ) -> BrowserSignInStart:
        """A sign-in that demands a fresh authentication (prompt=login, max_age) of ``login_hint``."""
        ...

    async def redeem(self, flow: Mapping[str, Any], response: Mapping[str, str]) -> Mapping[str, Any]:
        """Redeem the code the browser brought back; the ID token's claims, validated for this app
        (audience, issuer, lifetime, the flow's nonce). Raises ``SignInAbandoned`` (declined, blocked),
        ``SignInRefused`` (the code or the answer is refused) or ``EntraError``."""
        ...


class SignInTickets(Protocol):
    """Browser sign-ins waiting for their callback, by ``state``; each can be taken once."""

    async def put(self, state: str, ticket: str, ttl: timedelta) -> None: ...

    async def take(self, state: str, remember: timedelta) -> str | None:
        """The ticket, removed in the same step (a second take of the same state gets None); the used
        ticket is kept aside for ``remember``, so a replayed link can be told from a foreign one and
        traced to its request."""
        ...

    async def taken(self, state: str) -> str | None:
        """The ticket of a state already taken (within ``remember``), else None."""
        ...


class EntraGroupMembership(Protocol):
    async def is_transitive_member(self, user_object_id: str, group_id: str) -> bool:
        """True when the user is in the group directly or through nested groups."""
        ...

    async def object_id_of(self, user_principal_name: str) -> str | None:
        """The Entra object id of the user with this user principal name; None when there is none."""
        ...


class ChatProfiles(Protocol):
    """The e-mail address of a chat user's profile, to match them to their Entra account."""

    async def email_of(self, chat_user: str) -> str | None: ...


@dataclass(frozen=True)
class VerificationPolicy:
    tenant_id: str
    approver_group_id: str
    # chat user id -> UPN; checked before the profile e-mail
    identities: Mapping[str, str] | None = None
    max_auth_age: timedelta = timedelta(minutes=5)  # a sign-in older than this does not count
    auth_context: str | None = None  # a Conditional Access authentication context ("c1") to demand
    link_lifetime: timedelta = timedelta(minutes=10)  # how long a sign-in link (or device code) waits


CALLBACK_PATH = "/auth/callback"  # where the identity platform sends the approver's browser back
CLOCK_SKEW = timedelta(minutes=2)  # a sign-in "from the future" by less than this is the clocks, not an attack


def signed_in_at(claims: Mapping[str, Any]) -> datetime | None:
    value = claims.get("auth_time")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(float(value), UTC)


def check_claims(
    claims: Mapping[str, Any], policy: VerificationPolicy, expected_user: str, *, now: datetime
) -> tuple[str, str, bool]:
    """(object id, UPN, mfa) when the ID token names the expected user of our tenant, signed in with
    MFA within ``policy.max_auth_age`` of ``now`` (and in the authentication context, if one is asked).

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
    at = signed_in_at(claims)
    if at is None:
        raise SignInRefused(
            "the ID token does not say when the sign-in happened (no auth_time): add the optional claim "
            "auth_time to the ID token of the approvers' app registration"
        )
    age = now - at
    if age > policy.max_auth_age:
        minutes = int(policy.max_auth_age.total_seconds() // 60)
        raise SignInRefused(
            f"the sign-in of {upn} happened at {at:%H:%M:%S} UTC, more than {minutes} minutes ago (an earlier "
            "session was reused); an approval needs a sign-in made for it"
        )
    if age < -CLOCK_SKEW:
        raise SignInRefused(f"the sign-in of {upn} is dated {at:%H:%M:%S} UTC, in the future; check the clocks")
    if policy.auth_context:
        contexts = claims.get("acrs") or []
        if not isinstance(contexts, list) or policy.auth_context not in contexts:
            raise SignInRefused(
                f"the sign-in of {upn} did not satisfy the Conditional Access authentication context "
                f"{policy.auth_context} (no '{policy.auth_context}' in acrs)"
            )
    return object_id, upn, mfa
