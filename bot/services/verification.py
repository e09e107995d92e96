"""Verifying approvers against Entra ID: one sign-in for each approval, bound to its request.

The browser sign-in (authorization code flow with PKCE) is the default: a click on Approve gives the
approver a link, shown only to them, that works once, for that request, as that Slack user, for a
few minutes. Its ``state`` names a ticket kept server-side (signed with the integrity key, so a
ticket written into Redis by anything else is refused); the callback takes the ticket in one step,
so a second use of the link, or a state of another link, finds nothing. Where the bot has no
public listener (Socket Mode) the device code flow is the explicit alternative, again one sign-in
per approval: a second click on the same request shows the same code, a click on another request
starts another sign-in.

Whatever the flow, the ID token is checked the same way (``check_claims``: tenant, user, MFA, the
sign-in's own time, the authentication context) and the approver's membership of the Entra approver
group is read from Graph. Only the outcome is kept, as the approval it makes; never a token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.errors import EntraError, KerberosBotError
from bot.domain.integrity import Signer
from bot.domain.verification import (
    BrowserSignIn,
    ChatProfiles,
    DeviceCodePrompt,
    DeviceCodeSession,
    DeviceCodeSignIn,
    EntraGroupMembership,
    SignInAbandoned,
    SignInRefused,
    SignInTickets,
    VerificationPolicy,
    VerifiedIdentity,
    check_claims,
    signed_in_at,
)
from bot.observability.metrics import Metrics

log = logging.getLogger(__name__)

_TICKET = "sign-in ticket"
_CONFIRMATION = "sign-in confirmation"
CONFIRM_WITHIN = timedelta(minutes=5)  # how long a verified sign-in waits on the bot's page for the approver


class IdentityUnknown(KerberosBotError):
    """The chat user cannot be matched to an Entra user (no mapping, no profile e-mail)."""


@dataclass(frozen=True)
class SignInFor:
    """What one sign-in may approve: this request, as this chat user, clicked from this place; or (``action``
    "freeze" or "thaw") this freeze of this domain until this time, for this reason, or its early end."""

    request_id: str  # a freeze's: its audit record (freeze-<domain>)
    action: str
    chat_user: str
    origin: str  # "<team>/<app>/<channel>" of the click; the store checks it again
    channel: str
    domain: str = ""  # a freeze's or a thaw's
    until: str = ""  # a freeze's end (ISO 8601)
    reason: str = ""  # a freeze's reason, as its requester typed it


HOLD_ACTIONS = ("freeze", "thaw")  # sign-ins that stand for a freeze or its early end, not for an approval


@dataclass(frozen=True)
class VerificationOutcome:
    identity: VerifiedIdentity | None = None
    problem: str | None = None  # why the sign-in does not verify the approver
    abandoned: bool = False  # the sign-in never completed (expired, declined, called off)


@dataclass(frozen=True)
class SignInLink:
    url: str
    expected_user: str  # the Entra account the approver must sign in as
    expires_at: datetime


REPLAYED = "this sign-in link was already used; each link counts once"


@dataclass(frozen=True)
class CallbackResult:
    binding: SignInFor | None  # None: the link names no waiting sign-in (used, expired, forged)
    outcome: VerificationOutcome
    expected_user: str = ""
    replayed: SignInFor | None = None  # the link was used before: the approval it was made for


@dataclass(frozen=True)
class PendingVerification:
    prompt: DeviceCodePrompt
    expected_user: str
    new: bool  # False: the approver's sign-in for this request is still open; its code is shown again
    outcome: asyncio.Task[VerificationOutcome]


class ApproverVerification:
    def __init__(
        self,
        *,
        membership: EntraGroupMembership,
        profiles: ChatProfiles,
        policy: VerificationPolicy,
        clock: Callable[[], datetime],
        browser: BrowserSignIn | None = None,
        tickets: SignInTickets | None = None,
        signer: Signer | None = None,
        redirect_uri: str | None = None,
        device_code: DeviceCodeSignIn | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or Metrics.create()
        if browser is not None and (tickets is None or signer is None or not redirect_uri):
            raise ValueError("the browser sign-in needs a ticket store, the integrity signer and a redirect URI")
        if browser is None and device_code is None:
            raise ValueError("verification needs a browser sign-in or a device code sign-in")
        self._browser = browser
        self._tickets = tickets
        self._signer = signer
        self._redirect_uri = redirect_uri or ""
        self._device_code = device_code
        self._membership = membership
        self._profiles = profiles
        self.policy = policy
        self._clock = clock
        self._open: dict[tuple[str, str], tuple[DeviceCodeSession, PendingVerification]] = {}

    @property
    def uses_browser(self) -> bool:
        return self._browser is not None

    async def object_id_of(self, user_principal_name: str) -> str | None:
        """The Entra object id of the user, or None when Entra does not know that name (the requester is then
        still refused by their Slack id and that name). A failing lookup is None too: the request is not held."""
        try:
            return await self._membership.object_id_of(user_principal_name)
        except KerberosBotError as exc:
            log.warning("could not resolve an Entra user's object id: %s", exc.user_message)
            return None

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

    # -- the checks every flow shares ---------------------------------------------------------
    async def _verified(self, binding: SignInFor, claims: Mapping[str, Any], expected: str) -> VerificationOutcome:
        object_id, upn, mfa = check_claims(claims, self.policy, expected, now=self._clock())
        if not await self._membership.is_transitive_member(object_id, self.policy.approver_group_id):
            raise SignInRefused(f"{upn} is not a member of the Entra approver group")
        identity = VerifiedIdentity(object_id, upn, signed_in_at(claims) or self._clock(), mfa)
        log.info("approver %s verified as %s (%s) for %s", binding.chat_user, upn, object_id, binding.request_id)
        self._metrics.verifications.labels("verified").inc()
        return VerificationOutcome(identity=identity)

    async def _outcome(self, binding: SignInFor, claims: Callable[[], Any], expected: str) -> VerificationOutcome:
        """Run ``claims()`` (the flow's last step) and the checks; every way it can end, as an outcome."""
        try:
            return await self._verified(binding, await claims(), expected)
        except SignInRefused as exc:
            log.warning("approver %s not verified for %s: %s", binding.chat_user, binding.request_id, exc.user_message)
            self._metrics.verifications.labels("refused").inc()
            return VerificationOutcome(problem=exc.user_message)
        except SignInAbandoned as exc:
            self._metrics.verifications.labels("abandoned").inc()
            return VerificationOutcome(problem=exc.user_message, abandoned=True)
        except EntraError as exc:
            self._metrics.verifications.labels("error").inc()
            return VerificationOutcome(problem=f"Entra ID could not complete the check: {exc.user_message}")

    # -- browser sign-in (authorization code flow with PKCE) -------------------------------------
    async def begin_browser(self, binding: SignInFor) -> SignInLink:
        """A sign-in link for this approval only; it waits ``policy.link_lifetime`` for its callback."""
        assert self._browser is not None and self._tickets is not None and self._signer is not None
        expected = await self.expected_user(binding.chat_user)
        started = await self._browser.start(
            redirect_uri=self._redirect_uri,
            login_hint=expected,
            max_age=self.policy.max_auth_age,
            auth_context=self.policy.auth_context,
        )
        expires_at = self._clock() + self.policy.link_lifetime
        body = json.dumps(
            {
                "binding": asdict(binding),
                "expected": expected,
                "expires_at": expires_at.isoformat(),
                "flow": dict(started.flow),
            },
            sort_keys=True,
        )
        await self._tickets.put(started.state, self._sealed(_TICKET, body), self.policy.link_lifetime)
        self._metrics.verifications.labels("link").inc()
        return SignInLink(started.auth_uri, expected, expires_at)

    async def complete_browser(self, state: str, response: Mapping[str, str]) -> CallbackResult:
        """The browser came back to the callback with ``response`` (code and state, or an error)."""
        assert self._browser is not None and self._tickets is not None and self._signer is not None
        raw = await self._tickets.take(state, self.policy.link_lifetime) if state else None
        if raw is None:
            self._metrics.verifications.labels("refused").inc()
            used = await self._tickets.taken(state) if state else None
            replayed = self._opened(used) if used is not None else None
            if replayed is not None:
                log.warning(
                    "sign-in callback refused: the link of %s for %s was used again",
                    replayed[0].chat_user,
                    replayed[0].request_id,
                )
                return CallbackResult(None, VerificationOutcome(problem=REPLAYED), replayed[1], replayed=replayed[0])
            why = "this sign-in link is not one the bot is waiting for (expired, or not made for this bot)"
            log.warning("sign-in callback refused: %s", why)
            return CallbackResult(None, VerificationOutcome(problem=why))
        opened = self._opened(raw)
        if opened is None:
            self._metrics.verifications.labels("refused").inc()
            return CallbackResult(None, VerificationOutcome(problem="this sign-in link's record was tampered with"))
        binding, expected, expires_at, flow = opened
        if self._clock() > expires_at:
            self._metrics.verifications.labels("abandoned").inc()
            return CallbackResult(
                binding,
                VerificationOutcome(problem="the sign-in link expired before the sign-in completed", abandoned=True),
                expected,
            )
        browser = self._browser
        outcome = await self._outcome(binding, lambda: browser.redeem(flow, response), expected)
        return CallbackResult(binding, outcome, expected)

    def _sealed(self, purpose: str, body: str) -> str:
        """``body`` with the bot's MAC, for the ticket store (which anything that writes to Redis can write)."""
        assert self._signer is not None
        return json.dumps({"body": body, "mac": self._signer.text_mac(purpose, body)})

    def _unsealed(self, purpose: str, raw: str) -> Any:
        """The JSON inside a ticket ``_sealed`` made; raises ``ValueError`` (or ``KeyError``, ``TypeError``) when
        it is not one the bot sealed for ``purpose``."""
        assert self._signer is not None
        envelope = json.loads(raw)
        body = str(envelope["body"])
        if not self._signer.text_is_ours(purpose, body, str(envelope["mac"])):
            raise ValueError("MAC")
        return json.loads(body)

    # -- the approver confirms on the bot's page --------------------------------------------------
    async def hold_for_confirmation(self, binding: SignInFor, identity: VerifiedIdentity) -> str:
        """A verified sign-in waits for its approver to confirm, on the bot's page that names the change, that
        they mean to approve it (a sign-in alone could be a phished "please sign in again" link). Returns the
        page form's token: unguessable, bound to this sign-in, good once and for ``CONFIRM_WITHIN``."""
        assert self._tickets is not None and self._signer is not None
        token = secrets.token_urlsafe(32)
        body = json.dumps(
            {
                "binding": asdict(binding),
                "identity": {
                    "object_id": identity.object_id,
                    "upn": identity.upn,
                    "signed_in_at": identity.signed_in_at.isoformat(),
                    "mfa": identity.mfa,
                },
                "expires_at": (self._clock() + CONFIRM_WITHIN).isoformat(),
            },
            sort_keys=True,
        )
        await self._tickets.put(f"confirm:{token}", self._sealed(_CONFIRMATION, body), CONFIRM_WITHIN)
        return token

    async def take_confirmation(self, token: str) -> tuple[SignInFor, VerifiedIdentity] | None:
        """The sign-in a confirmation form's token stands for, once; None when it is not one the bot is
        waiting for (expired, used, forged)."""
        assert self._tickets is not None and self._signer is not None
        raw = await self._tickets.take(f"confirm:{token}", CONFIRM_WITHIN) if token else None
        if raw is None:
            return None
        try:
            held = self._unsealed(_CONFIRMATION, raw)
            if self._clock() > datetime.fromisoformat(str(held["expires_at"])):
                return None
            person = held["identity"]
            identity = VerifiedIdentity(
                str(person["object_id"]),
                str(person["upn"]),
                datetime.fromisoformat(str(person["signed_in_at"])),
                bool(person["mfa"]),
            )
            return SignInFor(**held["binding"]), identity
        except (ValueError, KeyError, TypeError) as exc:
            log.error("a sign-in confirmation in the store does not carry the bot's signature (%s); refused", type(exc))
            return None

    def _opened(self, raw: str) -> tuple[SignInFor, str, datetime, Mapping[str, Any]] | None:
        """A ticket's contents when the bot signed it: binding, expected user, expiry, msal's flow."""
        assert self._signer is not None
        try:
            ticket = self._unsealed(_TICKET, raw)
            return (
                SignInFor(**ticket["binding"]),
                str(ticket["expected"]),
                datetime.fromisoformat(str(ticket["expires_at"])),
                ticket["flow"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.error("a sign-in ticket in the store does not carry the bot's signature (%s); refused", type(exc))
            return None

    # -- device code sign-in (explicit setting, for Socket Mode) ---------------------------------
    async def start_device_code(self, binding: SignInFor) -> PendingVerification:
        """Begin the approver's device-code sign-in for this request (or show its open one again)."""
        assert self._device_code is not None
        key = (binding.chat_user, binding.request_id)
        if key in self._open:
            _session, pending = self._open[key]
            return PendingVerification(pending.prompt, pending.expected_user, False, pending.outcome)
        expected = await self.expected_user(binding.chat_user)
        session = await self._device_code.start()
        outcome = asyncio.create_task(self._finish_device_code(key, binding, session, expected), name=f"verify-{key}")
        pending = PendingVerification(session.prompt, expected, True, outcome)
        self._open[key] = (session, pending)
        return pending

    async def _finish_device_code(
        self, key: tuple[str, str], binding: SignInFor, session: DeviceCodeSession, expected: str
    ) -> VerificationOutcome:
        try:
            return await self._outcome(binding, session.claims, expected)
        except asyncio.CancelledError:
            session.cancel()
            raise
        finally:
            self._open.pop(key, None)

    def in_progress(self) -> int:
        return len(self._open)

    async def close(self) -> None:
        """Call off every open device-code sign-in (shutdown); their clicks learn they were abandoned."""
        for session, pending in list(self._open.values()):
            session.cancel()
            pending.outcome.cancel()
        outcomes = [pending.outcome for _session, pending in self._open.values()]
        if outcomes:  # their ends; a cancellation of the closer itself still goes through
            await asyncio.wait(outcomes)
            for outcome in outcomes:  # looked at, so none is reported as never retrieved
                if not outcome.cancelled():
                    outcome.exception()
        self._open.clear()  # a task cancelled before it ran never reached its own clean-up
