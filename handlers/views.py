"""Block Kit views: pure functions from domain results to Slack messages."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.approvals import ACTION_KINDS, Approval, ChangeRequest, RequestState
from bot.domain.diagnosis import Health, Severity
from bot.domain.errors import UsageError
from bot.domain.verification import DeviceCodePrompt
from bot.services.changes import ChangeService, DomainHistory
from bot.services.status import DomainStatus
from handlers.messages import Reply, escape, plain

# Slack's limits: 50 blocks a message, 10 fields a section, 3,000 characters a text, 2,000 a field.
MAX_BLOCKS = 50
_SECTION_TEXT = 3000
_FIELD_TEXT = 2000

HEALTH_ICON = {
    Health.HEALTHY: ":large_green_circle:",
    Health.DEGRADED: ":large_yellow_circle:",
    Health.BROKEN: ":red_circle:",
    Health.ABSENT: ":white_circle:",
    Health.UNKNOWN: ":grey_question:",
}
SEVERITY_ICON = {
    Severity.OK: ":white_check_mark:",
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def domain_status_blocks(status: DomainStatus) -> list[Block]:
    diag = status.diagnosis
    lines = []
    for finding in sorted(diag.findings, key=lambda f: -f.severity):
        line = f"{SEVERITY_ICON[finding.severity]} {escape(finding.summary)}"
        if finding.advice and finding.severity >= Severity.INFO:
            line += f"\n      _{escape(finding.advice)}_"
        lines.append(line)
    blocks: list[Block] = [
        HeaderBlock(text=_clip(f"Kerberos status: {status.domain}", 150)),
        SectionBlock(
            text=MarkdownTextObject(
                text=_clip(f"{HEALTH_ICON[diag.health]} *{diag.headline}*\n" + "\n".join(lines), _SECTION_TEXT)
            )
        ),
    ]
    if status.report is not None:
        fields = status.report.fields()
        on_prem, cloud = fields[:8], fields[8:]
        tdo = status.on_prem.trusted_domain if status.on_prem else None
        if tdo is not None:  # not a field of Get-AzureAdKerberosServer: the trust keys' age, beside the key's
            changed = tdo.keys_updated_on
            on_prem = [*on_prem, ("TrustKeysUpdatedOn", changed.strftime("%Y-%m-%d %H:%M:%S UTC") if changed else "")]
        for group, unavailable in ((on_prem, False), (cloud, status.cloud_unavailable is not None)):
            blocks.append(
                SectionBlock(
                    fields=[
                        MarkdownTextObject(
                            text=_clip(
                                f"*{name}*\n" + ("_unavailable_" if unavailable else escape(value) if value else "—"),
                                _FIELD_TEXT,
                            )
                        )
                        for name, value in group
                    ]
                )
            )
        if status.cloud_unavailable is not None:
            blocks.append(
                ContextBlock(
                    elements=[
                        MarkdownTextObject(
                            text=_clip(
                                f":warning: The Cloud* fields could not be read: {escape(status.cloud_unavailable)}",
                                _SECTION_TEXT,
                            )
                        )
                    ]
                )
            )
    if status.per_dc is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(_per_dc_text(status.per_dc), _SECTION_TEXT))))
    context = [f"Checked {status.checked_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"]
    if status.on_prem is not None:
        context.append(f"AD read from {escape(status.on_prem.read_from)}")
    if status.on_prem and status.on_prem.trusted_domain:
        tdo = status.on_prem.trusted_domain
        context.append(
            f"TDO {escape(tdo.partner)} (trustDirection {tdo.direction}, trustAttributes {tdo.attributes:#x})"
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=_clip(" · ".join(context), _SECTION_TEXT))]))
    return blocks


def _per_dc_text(versions: Mapping[str, int | None]) -> str:
    """KeyVersion on each configured DC; one behind the others is still waiting for replication."""
    newest = max((v for v in versions.values() if v is not None), default=None)
    lines = ["*KeyVersion on each DC*"]
    for dc, version in versions.items():
        if version is None:
            lines.append(f":grey_question: `{escape(dc)}`: no answer (or no Kerberos server)")
        elif version == newest:
            lines.append(f":white_check_mark: `{escape(dc)}`: {version}")
        else:
            lines.append(f":hourglass: `{escape(dc)}`: {version}, behind {newest} (replication has not reached it yet)")
    return "\n".join(lines)


def status_replies(statuses: Sequence[DomainStatus]) -> list[Reply]:
    """One or more in-channel messages: Slack takes at most 50 blocks in one."""
    replies: list[Reply] = []
    blocks: list[Block] = []
    texts: list[str] = []
    for status in statuses:
        chunk = domain_status_blocks(status)
        if blocks and len(blocks) + 1 + len(chunk) > MAX_BLOCKS:
            replies.append(Reply(text="; ".join(texts), blocks=blocks, in_channel=True))
            blocks, texts = [], []
        if blocks:
            blocks.append(DividerBlock())
        blocks.extend(chunk)
        texts.append(f"Kerberos status of {status.domain}: {status.diagnosis.headline}")
    if blocks:
        replies.append(Reply(text="; ".join(texts), blocks=blocks, in_channel=True))
    return replies


_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _by(actor: str | None) -> str:
    """A Slack user as a mention; anything else (a worker's name) as code, never as markup."""
    if not actor:
        return ""
    return f" by <@{actor}>" if _SLACK_USER.match(actor) else f" by `{escape(actor)}`"


def history_replies(history: DomainHistory) -> list[Reply]:
    """A domain's history: what the bot was asked and did (each request with its audit), then what
    Entra's audit log says changed; facts first, every word a person typed as plain text."""
    blocks: list[Block] = [HeaderBlock(text=_clip(f"History: {history.domain}", 150))]
    if not history.requests:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text="No change requests for this domain (within retention)."))
        )
    for request, audit in history.requests:
        head = (
            f"`{request.id}` *{ACTION_TITLES[request.action]}* by <@{request.requester}>, "
            f"{request.created_at:%Y-%m-%d %H:%M} UTC: {STATE_LINES[request.state]} "
            f"({len(request.approvals)}/{request.approvals_required} approvals)"
        )
        steps = [f"{entry.at:%m-%d %H:%M} {entry.event}{_by(entry.actor)}" for entry in audit]
        text = head + ("\n" + " · ".join(steps) if steps else "")
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip(text, _SECTION_TEXT))))
        blocks.append(_plain_context(f"Reason: {plain(request.reason, 200)}"))
    if history.cloud_events is not None:
        since = f" since {history.since:%Y-%m-%d}" if history.since else ""
        lines = [f"*Entra audit log (KerberosDomain){since}*"]
        lines += [
            f"{event.at:%Y-%m-%d %H:%M} UTC {escape(event.activity)}: {escape(event.result)}"
            + (f" by {escape(event.initiated_by)}" if event.initiated_by else "")
            for event in history.cloud_events[:20]
        ] or ["No KerberosDomain changes."]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), _SECTION_TEXT))))
    elif history.cloud_problem:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=_clip(f":warning: Entra's audit log: {escape(history.cloud_problem)}", 2000)
                    )
                ]
            )
        )
    return [Reply(text=f"History of {history.domain}", blocks=blocks[:MAX_BLOCKS], in_channel=False)]


def text_reply(text: str, *, icon: str = "") -> Reply:
    body = f"{icon} {text}" if icon else text
    return Reply(text=text, blocks=[SectionBlock(text=MarkdownTextObject(text=_clip(body, _SECTION_TEXT)))])


def error_reply(message: str) -> Reply:
    return text_reply(escape(message), icon=":warning:")


def help_reply(entries: Sequence[tuple[str, str]]) -> Reply:
    lines = [f"`/kerberos {usage}`  {escape(summary)}" for usage, summary in entries]
    return Reply(
        text="kerberos-bot commands",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text="*kerberos-bot*: Microsoft Entra Kerberos for Azure SQL MI")),
            SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), _SECTION_TEXT))),
        ],
    )


APPROVE_ACTION = "kerberos_approve"
DENY_ACTION = "kerberos_deny"
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
}


class TamperedButton(UsageError):
    def __init__(self) -> None:
        super().__init__(
            "This button was not made by kerberos-bot (its value is not one the bot puts on a card); "
            "nothing was changed."
        )


_BUTTON = re.compile(r"[0-9a-f]{6,32}\.[0-9a-f]{10,40}")


def button_payload(value: object) -> str:
    """A button's value as the bot writes it (``<request id>.<MAC>``, see ``ChangeService.button_value``);
    anything else is refused before it names a request."""
    if not isinstance(value, str) or not 8 <= len(value) <= 100 or not _BUTTON.fullmatch(value):
        raise TamperedButton()
    return value


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
        else f"`{request.action.value}` needs a verified approval: sign in to Entra ID with MFA."
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


@dataclass(frozen=True)
class ApprovalTerms:
    """What approving a request takes, from the policy of its stored action."""

    required: int
    verified: bool  # each approval needs an Entra sign-in with MFA
    groups: tuple[str, ...]  # Slack user group ids whose members may approve


def approval_terms(changes: ChangeService, request: ChangeRequest) -> ApprovalTerms:
    policy = changes.policy_of(request)
    # a request may need more than its policy (a setup that takes over another tenant's server)
    required = max(policy.approvals_required, request.approvals_required)
    return ApprovalTerms(required, policy.verified_approval, tuple(sorted(policy.approver_groups)))


def _time_left(request: ChangeRequest, now: datetime) -> str:
    minutes = int((request.expires_at - now).total_seconds() // 60)
    if minutes <= 0:
        return "expired"
    return f"{minutes // 60} h {minutes % 60} min left" if minutes >= 60 else f"{minutes} min left"


def _plain_context(text: str) -> ContextBlock:
    """User text as Slack shows it verbatim: plain_text renders no markup, mention, link or emoji code."""
    return ContextBlock(elements=[PlainTextObject(text=text, emoji=False)])


def request_card(request: ChangeRequest, button_value: str, terms: ApprovalTerms, now: datetime | None = None) -> Reply:
    """The request as approvers see it: everything the bot vouches for first (who, what, the approvals,
    what approving takes, the state), the requester's own words last and as plain text; the buttons
    go once it is decided."""
    now = now or datetime.now(UTC)
    title = f"{ACTION_TITLES[request.action]}: {request.domain}"
    approvals = ", ".join(approval_line(a) for a in request.approvals) or "none yet"
    who = ", ".join(f"<!subteam^{g}>" for g in terms.groups) or "nobody (no approver group is configured)"
    needs = "each one after an Entra sign-in with MFA" if terms.verified else "a click by each approver"
    lines = [
        f"*Requested by* <@{request.requester}>   *Request* `{request.id}`",
        f"*Approvals:* {len(request.approvals)} of {request.approvals_required} ({approvals})",
        f"*Approving takes:* {request.approvals_required} different people from {who}, {needs}; never the requester",
        f"*Expires:* {request.expires_at:%Y-%m-%d %H:%M} UTC"
        + (f" ({_time_left(request, now)})" if request.state == RequestState.PENDING else ""),
    ]
    plan = "\n".join(f"• {escape(step)}" for step in request.plan)
    status = STATE_LINES[request.state]
    if request.state in (RequestState.DENIED, RequestState.CANCELLED) and request.decided_by:
        status += f" by <@{request.decided_by}>"
        if request.decided_at:
            status += f" at {request.decided_at:%Y-%m-%d %H:%M} UTC"
    if request.outcome:
        status += f"\n{escape(request.outcome)}"
    blocks: list[Block] = [
        HeaderBlock(text=_clip(title, 150)),
        SectionBlock(text=MarkdownTextObject(text=_clip("\n".join(lines), _SECTION_TEXT))),
        SectionBlock(text=MarkdownTextObject(text=_clip(f"*What will change*\n{plan}", _SECTION_TEXT))),
        SectionBlock(text=MarkdownTextObject(text=_clip(status, _SECTION_TEXT))),
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
    if request.state == RequestState.PENDING:
        value = button_value
        blocks.append(
            ActionsBlock(
                block_id=f"request-{request.id}",
                elements=[
                    ButtonElement(text="Approve", action_id=APPROVE_ACTION, value=value, style="primary"),
                    ButtonElement(text="Deny", action_id=DENY_ACTION, value=value, style="danger"),
                ],
            )
        )
    return Reply(text=f"{title} ({request.state.value})", blocks=blocks, in_channel=True)
