"""What the demo console prints: a request's card from the core's card model (no Slack types: the proof
that a second surface needs nothing of the first), and any other message's Block Kit as a person would
read it in Slack."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any

from bot.domain.approvals import RequestState
from bot.domain.card import RequestCard
from bot.domain.hints import spelled

_EMOJI = {
    "large_green_circle": "[OK]",
    "large_yellow_circle": "[ATTENTION]",
    "red_circle": "[BROKEN]",
    "white_circle": "[ABSENT]",
    "grey_question": "[?]",
    "white_check_mark": "✓",
    "information_source": "i",
    "warning": "!",
    "rotating_light": "!!",
    "mag": "…",
    "hourglass_flowing_sand": "…",
    "hourglass": "…",
    "ballot_box_with_check": "☑",
    "closed_lock_with_key": "🔐",
    "satellite_antenna": "»",
    "no_entry": "✗",
    "no_entry_sign": "✗",
    "x": "✗",
    "gear": "⚙",
    "clock3": "◷",
    "inbox_tray": "»",
    "scroll": "»",
    "leftwards_arrow_with_hook": "↩",
}


def _mrkdwn(text: str) -> str:
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: _EMOJI.get(m.group(1), m.group(0)), text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*", r"\1", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: dict[str, Any] | None) -> str:
    if not obj:
        return ""
    return _mrkdwn(str(obj.get("text", ""))) if obj.get("type") == "mrkdwn" else str(obj.get("text", ""))


def render_message(message: dict[str, Any], width: int = 100) -> str:
    """Render ``{"text": ..., "blocks": [...]}`` as plain text."""
    blocks = message.get("blocks") or []
    if not blocks:
        return _mrkdwn(str(message.get("text", "")))
    out: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            title = _text(block.get("text"))
            out += [title, "=" * min(len(title), width)]
        elif kind == "section":
            if block.get("text"):
                out.append(_text(block["text"]))
            fields = [_text(f) for f in block.get("fields") or []]
            for f in fields:
                name, _, value = f.partition("\n")
                line = f"  {name:<20} {value}"
                out.append(textwrap.shorten(line, width=width * 2, placeholder="…") if len(line) > width * 2 else line)
        elif kind == "context":
            out.append("  (" + " ".join(_text(e) for e in block.get("elements") or []) + ")")
        elif kind == "divider":
            out.append("-" * width)
        elif kind == "input":
            label = _text(block.get("label"))
            optional = " (optional)" if block.get("optional") else ""
            out.append(f"  {label}{optional}: [ {block.get('element', {}).get('type', 'input')} ]")
        elif kind == "actions":
            labels = [f"[ {_text(e.get('text'))} ]" for e in block.get("elements") or []]
            out.append("  " + "  ".join(labels))
        else:
            out.append(f"<{kind} block>")
    return "\n".join(out)


_STATES = {
    RequestState.PENDING: "Waiting for approval",
    RequestState.APPROVED: "Approved; starting",
    RequestState.EXECUTING: "Running",
    RequestState.SUCCEEDED: "Done",
    RequestState.FAILED: "Failed",
    RequestState.DENIED: "Denied",
    RequestState.EXPIRED: "Expired without enough approvals",
    RequestState.CANCELLED: "Cancelled",
    RequestState.ATTENTION: "Needs attention: the worker stopped while carrying it out",
    RequestState.WITH_OPERATOR: "Approved; with its operator, who runs it (the bot verifies)",
}


def _operator_lines(card: RequestCard, who: Callable[[str], str]) -> list[str]:
    handover = card.handover
    assert handover is not None
    if not card.with_operator:
        return [f"Run by {who(handover.operator)} ({handover.upn}) with their own MFA sign-in"]
    return [
        f"Operator: {who(handover.operator)} ({handover.upn}), until {handover.until:%Y-%m-%d %H:%M} UTC; on the "
        "management host:",
        "  $domainCred = Get-Credential",
        f"  {handover.command}",
        f"Then /kerberos done {card.request.id} (the bot also looks by itself)",
    ]


def render_card(card: RequestCard, people: dict[str, str] | None = None, width: int = 100) -> str:
    """A request's card as the console shows it, from the card model alone."""
    request, terms = card.request, card.terms
    names = people or {}

    def who(user: str) -> str:
        return "@" + names.get(user, user)

    approvals = ", ".join(
        f"{who(a.approver)} at {a.at:%H:%M} UTC" + (f" ({a.identity.describe()})" if a.identity else "")
        for a in request.approvals
    )
    state = _STATES[request.state]
    if request.state == RequestState.APPROVED and request.waits_until is not None:
        state = f"Approved; waits for the change window, runs at {request.waits_until:%Y-%m-%d %H:%M} UTC"
    if request.decided_by and request.state in (RequestState.DENIED, RequestState.CANCELLED):
        state += f" by {who(request.decided_by)}"
    needs = "each one after an Entra sign-in with MFA" if terms.verified else "a click by each approver"
    groups = ", ".join(f"@{g}" for g in terms.groups) or "nobody (no approver group is configured)"
    lines = [
        card.title,
        "=" * min(len(card.title), width),
        f"Requested by {who(request.requester)}   Request {request.id}",
        f"Approvals: {len(request.approvals)} of {terms.required} ({approvals or 'none yet'})",
        f"Approving takes: {terms.required} different people from {groups}, {needs}; never the requester",
        f"Expires: {request.expires_at:%Y-%m-%d %H:%M} UTC"
        + (f" ({int(card.time_left.total_seconds() // 60)} min left)" if card.time_left is not None else ""),
        *([f"When it runs: {card.timing}"] if card.timing else []),
        "What will change",
        *(f"  - {step}" for step in request.plan),
        state,
        *([spelled(request.outcome, lambda command: f"/kerberos {command}")] if request.outcome else []),
        *(_operator_lines(card, who) if card.handover is not None else []),
        f"  (Reason given by the requester: {request.reason})",
        *([f"  (Reason for the denial: {request.decision_reason})"] if request.decision_reason else []),
        *(["  [ Approve ]  [ Deny ]"] if card.decidable else []),
    ]
    return "\n".join(lines)
