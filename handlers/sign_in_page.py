"""The page the approver's browser lands on after the Entra sign-in (``POST /auth/callback``, form_post).

It completes the sign-in made for one approval (``ApproverVerification.complete_browser``), records
the approval or the refusal exactly as a click would (card, thread, the approver's ephemeral
message, the audit), and says in plain words which request was approved and as whom, or why not,
and that the tab can be closed. Every answer is a page: a fault becomes a page with a reference,
never an HTTP 500. Nothing from the query string or from Entra reaches the page unescaped.
"""

from __future__ import annotations

import html
import logging

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Verdict
from bot.domain.verification import CALLBACK_PATH
from bot.observability.logs import new_request_id
from bot.services.changes.engine import ChangeEngine
from bot.services.verification import ApproverVerification
from handlers.actions.approve import record_replay, record_sign_in
from handlers.views.cards import ACTION_TITLES

log = logging.getLogger(__name__)

_HEADERS = {
    # the page holds no script, loads nothing, and must not leak the code in its URL to anyone
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
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


def page(
    title: str, lead: str, details: list[tuple[str, str]], closing: str, *, ok: bool, status: int = 200
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
        f'{"<dl>" + rows + "</dl>" if rows else ""}<p id="next">{html.escape(closing)}</p></main></body></html>'
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def sign_in_routes(
    verification: ApproverVerification | None, changes: ChangeEngine | None, client: AsyncWebClient
) -> list[web.RouteDef]:
    """``GET /auth/callback`` when approvers sign in through a browser; nothing otherwise."""
    if verification is None or changes is None or not verification.uses_browser:
        return []

    async def callback(request: web.Request) -> web.Response:
        reference = new_request_id()
        try:
            return await _complete(request)
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
        if result.replayed is not None:
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
        recorded = await record_sign_in(client, changes, binding, result.outcome)
        stored = recorded.request
        what = f"{ACTION_TITLES[stored.action]}: {stored.domain}" if stored else binding.action
        facts = [("Request", binding.request_id), ("Change", what)]
        identity = result.outcome.identity
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
        if result.expected_user:
            facts.append(("Sign in as", result.expected_user))
        why = recorded.problem or result.outcome.problem or "the sign-in did not verify you"
        return page(
            "Approval not counted",
            f"Your approval was not counted: {why.rstrip('.')}.",
            facts,
            "Nothing was changed. You can close this tab; click Approve again in Slack to try again.",
            ok=False,
        )

    return [web.get(CALLBACK_PATH, callback), web.post(CALLBACK_PATH, callback)]
