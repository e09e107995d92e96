"""The page the approver's browser lands on after the Entra sign-in (``POST /auth/callback``, form_post).

It completes the sign-in made for one approval (``ApproverVerification.complete_browser``). A sign-in
that verifies the approver is not yet an approval: the page names the change (action, domain, who asked
and why) and asks the approver to confirm it (``POST /auth/confirm``, with a one-use token bound to the
sign-in), so that a genuine Microsoft sign-in reached through a phished "please sign in again" link
approves nothing. Confirmed, it records the approval exactly as a click would (card, thread, the
approver's ephemeral message, the audit); "This is not mine" declines it, audited and told in the alert
channel. Every answer is a page: a fault becomes a page with a reference, never an HTTP 500. Nothing
from the query string, the request or Entra reaches the page unescaped.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Verdict
from bot.domain.errors import KerberosBotError
from bot.domain.verification import CALLBACK_PATH, VerifiedIdentity
from bot.observability.logs import new_request_id
from bot.services.changes.engine import ChangeEngine
from bot.services.verification import HOLD_ACTIONS, ApproverVerification, SignInFor, VerificationOutcome
from handlers.actions.approve import record_replay, record_sign_in
from handlers.notices.freezes import frozen_text, tell_frozen, tell_thawed, thawed_text
from handlers.replies import escape
from handlers.views.cards import ACTION_TITLES

log = logging.getLogger(__name__)

_HEADERS = {
    # the page holds no script, loads nothing, and must not leak the code in its URL to anyone
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1d1c1d}h1{font-size:1.5rem}.ok{color:#007a5a}.no{color:#a4262c}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}dt{font-weight:600}"
)
_ACCEPTED = (Verdict.RECORDED, Verdict.APPROVED)


CONFIRM_PATH = "/auth/confirm"
_APPROVE, _DECLINE = "approve", "decline"


def _confirm_form(token: str, confirm: str = "Approve this change") -> str:
    return (
        f'<form method="post" action="{CONFIRM_PATH}"><input type="hidden" name="token" value="{html.escape(token)}">'
        f'<button type="submit" name="decision" value="{_APPROVE}" id="approve">{html.escape(confirm)}</button> '
        f'<button type="submit" name="decision" value="{_DECLINE}" id="decline">This is not mine</button></form>'
    )


def page(
    title: str,
    lead: str,
    details: list[tuple[str, str]],
    closing: str,
    *,
    ok: bool,
    status: int = 200,
    form: str = "",
) -> web.Response:
    """An accessible page: a heading, one status paragraph (announced), the facts, what to do now."""
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in details)
    role = "status" if ok else "alert"
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - kerberos-bot</title><style>{_STYLE}</style></head><body><main>"
        f'<h1 class="{"ok" if ok else "no"}">{html.escape(title)}</h1>'
        f'<p id="outcome" role="{role}">{html.escape(lead)}</p>'
        f'{"<dl>" + rows + "</dl>" if rows else ""}{form}<p id="next">{html.escape(closing)}</p></main></body></html>'
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def sign_in_routes(
    verification: ApproverVerification | None,
    changes: ChangeEngine | None,
    client: AsyncWebClient,
    alert_channel: str | None = None,
) -> list[web.RouteDef]:
    """``/auth/callback`` and ``/auth/confirm`` when approvers sign in through a browser; nothing otherwise."""
    if verification is None or changes is None or not verification.uses_browser:
        return []

    async def callback(request: web.Request) -> web.Response:
        return await _answered(request, _complete)

    async def confirm(request: web.Request) -> web.Response:
        return await _answered(request, _confirmed)

    async def _answered(request: web.Request, handle: Callable[[web.Request], Awaitable[web.Response]]) -> web.Response:
        reference = new_request_id()
        try:
            return await handle(request)
        except Exception:
            log.exception("the sign-in callback failed (reference %s)", reference)
            return page(
                "Something went wrong",
                "kerberos-bot could not finish this sign-in; your approval was not counted.",
                [("Reference", reference)],
                "Click Approve again in Slack to get a new sign-in link, or give the reference to the bot's operators.",
                ok=False,
                status=503,
            )

    async def _complete(request: web.Request) -> web.Response:
        # form_post (what the bot asks for) brings the answer in the body; a query still works
        fields = await request.post() if request.method == "POST" else request.query
        query = {k: v for k, v in fields.items() if isinstance(v, str)}
        result = await verification.complete_browser(query.get("state", ""), query)
        binding = result.binding
        if result.replayed is not None and result.replayed.action in HOLD_ACTIONS:
            await changes.decisions.refuse_unverified(
                result.replayed.request_id, result.replayed.chat_user, "a used sign-in link was presented again"
            )
        elif result.replayed is not None:
            await record_replay(client, changes, result.replayed)
        if binding is None:
            return page(
                "This sign-in link does not count",
                f"Your sign-in was not used: {result.outcome.problem or 'the link is not valid'}.",
                [],
                "Nothing was changed. Click Approve again in Slack to get a new link, made for that approval.",
                ok=False,
                status=400,
            )
        identity = result.outcome.identity
        if identity is not None:  # verified: not an approval until the approver confirms what it is for
            token = await verification.hold_for_confirmation(binding, identity)
            if binding.action in HOLD_ACTIONS:
                return _ask_hold(binding, identity, token)
            return await _ask(binding, identity, token)
        if binding.action in HOLD_ACTIONS:
            return await _hold_refused(binding, result.outcome.problem or "the sign-in did not verify you")
        return await _recorded(binding, result.outcome, result.expected_user)

    def _ask_hold(binding: SignInFor, identity: VerifiedIdentity, token: str) -> web.Response:
        freezing = binding.action == "freeze"
        facts = [("Domain", binding.domain)]
        if freezing:
            facts += [("Frozen until", f"{binding.until[:16].replace('T', ' ')} UTC"), ("Why", binding.reason)]
        facts.append(("Signed in as", f"{identity.upn} (multi-factor authentication)"))
        what = "freeze this domain" if freezing else "end this domain's freeze"
        return page(
            "Confirm the freeze" if freezing else "Confirm the end of the freeze",
            f"You signed in. Confirm only if you asked to {what}, in Slack, just now.",
            facts,
            "If you did not ask for this, choose \u201cThis is not mine\u201d: nothing changes and the bot's "
            "operators are told.",
            ok=True,
            form=_confirm_form(token, "Freeze the domain" if freezing else "End the freeze"),
        )

    async def _held(binding: SignInFor, identity: VerifiedIdentity) -> web.Response:
        """A confirmed freeze, or end of one: made now, announced as the command would have."""
        try:
            if binding.action == "freeze":
                until = datetime.fromisoformat(binding.until)
                frozen = await changes.holds.freeze(
                    binding.domain, by=binding.chat_user, until=until, reason=binding.reason, identity=identity
                )
                said = frozen_text(frozen)
                await tell_frozen(client, changes, alert_channel, frozen, binding.channel)
            else:
                ended = await changes.holds.thaw(binding.domain, by=binding.chat_user, identity=identity)
                said = thawed_text(binding.domain, binding.chat_user) if ended else f"{binding.domain} was not frozen."
                if ended:
                    await tell_thawed(
                        client, changes, alert_channel, binding.domain, binding.chat_user, binding.channel
                    )
        except KerberosBotError as exc:
            return await _hold_refused(binding, exc.user_message)
        with contextlib.suppress(Exception):  # the freeze stands; the note in its channel is what failed
            await client.chat_postMessage(channel=binding.channel, text=said)
        title = "Domain frozen" if binding.action == "freeze" else "Freeze ended"
        facts = [("Domain", binding.domain), ("Signed in as", f"{identity.upn} (multi-factor authentication)")]
        return page(title, "Done; the domain's channels are told.", facts, "You can close this tab.", ok=True)

    async def _hold_refused(binding: SignInFor, why: str) -> web.Response:
        await changes.decisions.refuse_unverified(binding.request_id, binding.chat_user, why)
        what = "freeze" if binding.action == "freeze" else "end of the freeze"
        text = f":no_entry_sign: The {what} of {escape(binding.domain)} was not made: {escape(why)}. Nothing changed."
        with contextlib.suppress(Exception):
            await client.chat_postEphemeral(channel=binding.channel, user=binding.chat_user, text=text)
        return page(
            "Nothing changed",
            f"The {what} was not made: {why.rstrip('.')}.",
            [("Domain", binding.domain)],
            "You can close this tab; ask again in Slack to try again.",
            ok=False,
        )

    async def _ask(binding: SignInFor, identity: VerifiedIdentity, token: str) -> web.Response:
        stored = await changes.queries.get(binding.request_id)
        if stored is None:
            return page(
                "This request no longer exists", "Nothing was approved.", [], "You can close this tab.", ok=False
            )
        facts = [
            ("Request", stored.id),
            ("Change", f"{ACTION_TITLES[stored.action]}: {stored.domain}"),
            ("Asked by", stored.requester),
            ("Why", stored.reason),
            ("Signed in as", f"{identity.upn} (multi-factor authentication)"),
        ]
        return page(
            "Confirm your approval",
            "You signed in. Approve this change only if you asked to approve it, in Slack, just now.",
            facts,
            "If you did not click Approve on this request, choose \u201cThis is not mine\u201d: nothing is "
            "approved and the bot's operators are told.",
            ok=True,
            form=_confirm_form(token),
        )

    async def _confirmed(request: web.Request) -> web.Response:
        fields = await request.post()
        token, decision = str(fields.get("token", "")), str(fields.get("decision", ""))
        held = await verification.take_confirmation(token) if decision in (_APPROVE, _DECLINE) else None
        if held is None:
            return page(
                "This confirmation does not count",
                "Nothing was approved: this page's form is not one the bot is waiting for (used, expired, or "
                "not made by the bot).",
                [],
                "Click Approve again in Slack to get a new sign-in link.",
                ok=False,
                status=400,
            )
        binding, identity = held
        if decision == _DECLINE:
            return await _declined(binding, identity)
        if binding.action in HOLD_ACTIONS:
            return await _held(binding, identity)
        return await _recorded(binding, VerificationOutcome(identity=identity), None)

    async def _declined(binding: SignInFor, identity: VerifiedIdentity) -> web.Response:
        why = f"{identity.upn} said this sign-in was not theirs (a link they did not ask for?)"
        await changes.decisions.refuse_unverified(binding.request_id, binding.chat_user, why)
        if alert_channel:
            text = (
                f":rotating_light: A sign-in to approve `{binding.request_id}` was declined on the bot's page: "
                f"{escape(identity.upn)} says it was not theirs. Someone may be sending approval links around."
            )
            try:
                await client.chat_postMessage(channel=alert_channel, text=text)
            except Exception:
                log.warning("could not tell the alert channel of a declined sign-in", exc_info=True)
        return page(
            "Nothing was approved",
            "Thank you: your sign-in approved nothing, and the bot's operators are told.",
            [("Request", binding.request_id)],
            "If you did not ask for this sign-in, tell your security team. You can close this tab.",
            ok=True,
        )

    async def _recorded(binding: SignInFor, outcome: VerificationOutcome, expected_user: str | None) -> web.Response:
        recorded = await record_sign_in(client, changes, binding, outcome)
        stored = recorded.request
        what = f"{ACTION_TITLES[stored.action]}: {stored.domain}" if stored else binding.action
        facts = [("Request", binding.request_id), ("Change", what)]
        identity = outcome.identity
        if identity is not None and recorded.verdict in _ACCEPTED and stored is not None:
            facts.append(("Signed in as", f"{identity.upn} (multi-factor authentication)"))
            count = len(stored.approvals)
            lead = (
                f"Your approval is recorded ({count} of {stored.approvals_required}): the change starts; follow it "
                "in the request's thread in Slack."
                if recorded.verdict == Verdict.APPROVED
                else f"Your approval is recorded ({count} of {stored.approvals_required}); the request waits for "
                "the other approvers."
            )
            return page("Approval recorded", lead, facts, "You can close this tab.", ok=True)
        if expected_user:
            facts.append(("Sign in as", expected_user))
        why = recorded.problem or outcome.problem or "the sign-in did not verify you"
        return page(
            "Approval not counted",
            f"Your approval was not counted: {why.rstrip('.')}.",
            facts,
            "Nothing was changed. You can close this tab; click Approve again in Slack to try again.",
            ok=False,
        )

    return [web.get(CALLBACK_PATH, callback), web.post(CALLBACK_PATH, callback), web.post(CONFIRM_PATH, confirm)]
