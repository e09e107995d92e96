"""The request card and the approver's prompts: what a change request looks like in its channel."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.approvals import ACTION_KINDS, Approval, ChangeRequest, RequestState
from bot.domain.card import RequestCard
from bot.domain.errors import UsageError
from bot.domain.verification import DeviceCodePrompt
from handlers.replies import Reply, escape, person, plain
from handlers.views.blocks import SECTION_TEXT, clip

APPROVE_ACTION = "kerberos_approve"
DENY_ACTION = "kerberos_deny"
TAKE_OVER_ACTION = "kerberos_take_over"  # operator-executes mode: another operator runs it
ACTION_TITLES = {action: kind.title for action, kind in ACTION_KINDS.items()}
STATE_LINES = {
    RequestState.PENDING: ":hourglass_flowing_sand: Waiting for approval",
    RequestState.APPROVED: ":white_check_mark: Approved; starting",
    RequestState.EXECUTING: ":gear: Running",
    RequestState.SUCCEEDED: ":white_check_mark: Done",
    RequestState.FAILED: ":x: Failed",
    RequestState.DENIED: ":no_entry: Denied",
    RequestState.EXPIRED: ":clock3: Expired without enough approvals",
    RequestState.CANCELLED: ":leftwards_arrow_with_hook: Cancelled",
    RequestState.ATTENTION: ":rotating_light: Needs attention: the worker stopped while carrying it out",
    RequestState.WITH_OPERATOR: ":technologist: Approved; with its operator, who runs it (the bot verifies)",
}


def state_line(request: ChangeRequest) -> str:
    """Its state in a few words; an approved request waiting for its change window says until when."""
    if request.state == RequestState.APPROVED and request.waits_until is not None:
        return f":calendar: Approved; waits for the change window, runs at {request.waits_until:%Y-%m-%d %H:%M} UTC"
    return STATE_LINES[request.state]


class TamperedButton(UsageError):
    def __init__(self) -> None:
        super().__init__(
            "This button was not made by kerberos-bot (its value is not one the bot puts on a card); "
            "nothing was changed."
        )


_BUTTON = re.compile(r"[0-9a-f]{6,32}\.[0-9a-f]{10,40}")


def button_payload(value: object) -> str:
    """A button's value as the bot writes it (``<request id>.<MAC>``, see ``ChangeEngine.button_value``);
    anything else is refused before it names a request."""
    if not isinstance(value, str) or not 8 <= len(value) <= 100 or not _BUTTON.fullmatch(value):
        raise TamperedButton()
    return value


def decision_buttons(block_id: str, value: str, approve: str = APPROVE_ACTION, deny: str = DENY_ACTION) -> ActionsBlock:
    """Approve and Deny, each carrying ``value`` (the request's id and its MAC, nothing that decides)."""
    return ActionsBlock(
        block_id=block_id,
        elements=[
            ButtonElement(text="Approve", action_id=approve, value=value, style="primary"),
            ButtonElement(text="Deny", action_id=deny, value=value, style="danger"),
        ],
    )


def group_mentions(groups: Iterable[str], separator: str = " ") -> str:
    """Slack user groups as mentions (they ping their members)."""
    return separator.join(f"<!subteam^{g}>" for g in groups)


def approval_line(approval: Approval) -> str:
    """ "<@U1> at 10:02 UTC (verified as alice@contoso.com, MFA)"."""
    line = f"<@{approval.approver}> at {approval.at:%H:%M} UTC"
    if approval.identity is not None:
        line += f" ({escape(approval.identity.describe())})"
    return line


def verification_prompt(request: ChangeRequest, prompt: DeviceCodePrompt, expected_user: str, *, again: bool) -> Reply:
    """Shown only to the approver: where to sign in with a device code, as whom, for which request."""
    head = (
        "Your Entra sign-in for this request is still open; the code is the same."
        if again
        else f"`{ACTION_KINDS[request.action].command}` needs a verified approval: sign in to Entra ID with MFA."
    )
    steps = (
        f"1. Open {escape(prompt.verification_uri)}\n"
        f"2. Enter the code *{escape(prompt.user_code)}* (valid until {prompt.expires_at:%H:%M} UTC)\n"
        f"3. Sign in as *{escape(expected_user)}*, with multi-factor authentication"
    )
    tail = (
        f"This sign-in approves request `{request.id}` only, once; another request needs a sign-in of its own. "
        "The bot keeps no token."
    )
    return Reply(
        text=f"Sign in at {prompt.verification_uri} with the code {prompt.user_code} to approve {request.id}",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f":closed_lock_with_key: {head}")),
            SectionBlock(text=MarkdownTextObject(text=steps)),
            ContextBlock(elements=[MarkdownTextObject(text=tail)]),
        ],
    )


SIGN_IN_LINK_ACTION = "kerberos_sign_in_link"  # a link button: Slack still reports the click, which is acked


def sign_in_link_prompt(request: ChangeRequest, url: str, expected_user: str, expires_at: datetime) -> Reply:
    """Shown only to the approver: the browser sign-in made for this approval of this request."""
    head = (
        f"Approving `{request.id}` ({ACTION_TITLES[request.action]}: {escape(request.domain)}) needs a fresh Entra "
        f"sign-in with MFA as *{escape(expected_user)}*."
    )
    tail = (
        f"The link works once, for this approval only, until {expires_at:%H:%M} UTC; your approval counts when the "
        "sign-in completes. Do not forward it. The bot keeps no token."
    )
    return Reply(
        text=f"Sign in to Entra ID as {expected_user} to approve {request.id}: {url}",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(text=f":closed_lock_with_key: {head}"),
                accessory=ButtonElement(
                    text="Sign in to approve", action_id=SIGN_IN_LINK_ACTION, url=url, style="primary"
                ),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=tail)]),
        ],
    )


def _second(request: ChangeRequest) -> str:
    return "approved together with this one" if request.second_with_first else "with its own approvals"


def _time_left(left: timedelta) -> str:
    minutes = int(left.total_seconds() // 60)
    if minutes <= 0:
        return "expired"
    return f"{minutes // 60} h {minutes % 60} min left" if minutes >= 60 else f"{minutes} min left"


def plain_context(text: str) -> ContextBlock:
    """User text as Slack shows it verbatim: plain_text renders no markup, mention, link or emoji code."""
    return ContextBlock(elements=[PlainTextObject(text=text, emoji=False)])


def operator_lines(card: RequestCard) -> str:
    """Who runs a handed-over change, until when, and the exact command (the bot verifies what they do)."""
    handover, request = card.handover, card.request
    assert handover is not None
    if not card.with_operator:
        return f"*Run by* {person(handover.operator)} ({escape(handover.upn)}) with their own MFA sign-in."
    return (
        f"*Operator:* {person(handover.operator)}, signed in as {escape(handover.upn)} with MFA, until "
        f"{handover.until:%Y-%m-%d %H:%M} UTC. On the management host:\n"
        f"```$domainCred = Get-Credential\n{escape(handover.command)}```\n"
        f"Then `/kerberos done {request.id}`; the bot also looks by itself, and concludes only from AD and Entra's "
        f"audit log. If they are away, another operator who may run it takes it over (the button, or "
        f"`/kerberos take {request.id}`)."
    )


def request_card(card: RequestCard, button_value: str) -> Reply:
    """The request as approvers see it, in Block Kit: everything the bot vouches for first (who, what, the
    approvals, what approving takes, when it runs, the state), the requester's own words last and as plain
    text; the buttons go once it is decided."""
    request, terms, title, timing = card.request, card.terms, card.title, card.timing
    approvals = ", ".join(approval_line(a) for a in request.approvals) or "none yet"
    who = group_mentions(terms.groups, ", ") or "nobody (no approver group is configured)"
    needs = "each one after an Entra sign-in with MFA" if terms.verified else "a click by each approver"
    lines = [
        f"*Requested by* {person(request.requester)}   *Request* `{request.id}`"
        + (f" (double rotation: the second follows after 24 hours, {_second(request)})" if request.twice else "")
        + (f" (the second rotation after `{request.follows}`)" if request.follows else ""),
        (
            f"*Approvals:* approved together with `{request.approved_with}` (its approvals approved both, as the "
            "policy allows); no click needed"
            if request.approved_with
            else f"*Approvals:* {len(request.approvals)} of {terms.required} ({approvals})"
        ),
        f"*Approving takes:* {terms.required} different people from {who}, {needs}; never the requester",
        f"*Expires:* {request.expires_at:%Y-%m-%d %H:%M} UTC"
        + (f" ({_time_left(card.time_left)})" if card.time_left is not None else ""),
    ]
    if timing:
        lines.append(f"*When it runs:* {escape(timing)}")
    plan = "\n".join(f"• {escape(step)}" for step in request.plan)
    status = state_line(request)
    if request.state in (RequestState.DENIED, RequestState.CANCELLED) and request.decided_by:
        status += f" by <@{request.decided_by}>"
        if request.decided_at:
            status += f" at {request.decided_at:%Y-%m-%d %H:%M} UTC"
    if request.outcome:
        status += f"\n{escape(request.outcome)}"
    if card.handover is not None:
        status += "\n" + operator_lines(card)
    blocks: list[Block] = [
        HeaderBlock(text=clip(title, 150)),
        SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT))),
        SectionBlock(text=MarkdownTextObject(text=clip(f"*What will change*\n{plan}", SECTION_TEXT))),
        SectionBlock(text=MarkdownTextObject(text=clip(status, SECTION_TEXT))),
        ContextBlock(
            elements=[PlainTextObject(text=f"Reason given by the requester: {plain(request.reason)}", emoji=False)]
        ),
    ]
    if request.decision_reason:
        blocks.append(
            ContextBlock(
                elements=[PlainTextObject(text=f"Reason for the denial: {plain(request.decision_reason)}", emoji=False)]
            )
        )
    if card.decidable:
        blocks.append(decision_buttons(f"request-{request.id}", button_value))
    elif card.with_operator:
        take = ButtonElement(text="Take it over", action_id=TAKE_OVER_ACTION, value=button_value)
        blocks.append(ActionsBlock(block_id=f"operator-{request.id}", elements=[take]))
    return Reply(text=f"{title} ({request.state.value})", blocks=blocks, in_channel=True)
