"""The bot's home page (App Home) for one person: the domains, what waits for their approval (with its
buttons), their own requests, and their direct-message setting. Within Slack's 100 blocks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.approvals import ACTION_KINDS, ChangeRequest
from bot.domain.card import RequestCard
from bot.domain.findings import Severity
from bot.services.home import DomainLine, HomePage
from handlers.replies import escape, person, plain
from handlers.views.blocks import SECTION_TEXT, clip, plain_context
from handlers.views.cards import decision_buttons, state_line

HOME_APPROVE = "kerberos_home_approve"
HOME_DENY = "kerberos_home_deny"
HOME_DMS = "kerberos_home_dms"
HOME_MAX_BLOCKS = 100  # Slack's limit for a home tab (a message has 50)


def _days(line: DomainLine) -> str:
    if line.key_age is None:
        return "no key"
    return f"KeyVersion {line.key_version}, {line.key_age.days} days old"


def _health(line: DomainLine) -> str:
    if line.problem:
        return f":warning: the key could not be read: {escape(line.problem)}"
    if line.findings is None:
        return "not watched here (no channel): `/kerberos status` reads it"
    if not line.findings:
        return ":white_check_mark: nothing to fix at the watch's last look"
    worst = max(line.findings, key=lambda f: f.severity)
    icon = ":rotating_light:" if worst.severity >= Severity.CRITICAL else ":warning:"
    more = f" (+{len(line.findings) - 1} more)" if len(line.findings) > 1 else ""
    return f"{icon} {escape(worst.summary)}{more}"


def _domain_text(line: DomainLine) -> str:
    due = f"; next rotation due {line.next_due:%Y-%m-%d}" if line.next_due else ""
    return clip(f"*{escape(line.domain)}*: {_days(line)}{due}\n{_health(line)}", SECTION_TEXT)


def _needs_someone(line: DomainLine) -> bool:
    return bool(line.problem) or bool(line.findings)


def _domain_blocks(lines: tuple[DomainLine, ...], budget: int) -> list[Block]:
    """Every domain, the ones that need someone first, several to a block (within a section's 3,000
    characters), in at most ``budget`` blocks; what does not fit is counted, with where to see it."""
    ordered = sorted(lines, key=lambda line: (not _needs_someone(line), line.domain))
    chunks: list[list[str]] = [[]]
    for text in (_domain_text(line) for line in ordered):
        if chunks[-1] and len("\n\n".join([*chunks[-1], text])) > SECTION_TEXT:
            chunks.append([])
        chunks[-1].append(text)
    chunks = [chunk for chunk in chunks if chunk]
    if len(chunks) <= budget:
        return [SectionBlock(text=MarkdownTextObject(text="\n\n".join(chunk))) for chunk in chunks]
    kept = chunks[: max(budget - 1, 0)]  # one block stays for the count of what is left out
    shown = sum(len(chunk) for chunk in kept)
    left = f"{len(ordered) - shown} more domains ({shown} of {len(ordered)} shown): /kerberos status lists every one."
    return [*(SectionBlock(text=MarkdownTextObject(text="\n\n".join(chunk))) for chunk in kept), plain_context(left)]


def _request_line(card: RequestCard) -> str:
    request = card.request
    command = ACTION_KINDS[request.action].command
    return (
        f"`{request.id}` {command} {escape(request.domain)} by {person(request.requester)}: {state_line(request)} "
        f"({len(request.approvals)}/{card.terms.required}; expires {request.expires_at:%m-%d %H:%M} UTC)"
    )


def _run_line(card: RequestCard) -> str:
    request, handover = card.request, card.handover
    until = f" until {handover.until:%m-%d %H:%M} UTC" if handover is not None else ""
    return (
        f"`{request.id}` {ACTION_KINDS[request.action].command} {escape(request.domain)}{until}: the command with "
        f"your account is on its card; then `/kerberos done {request.id}`."
    )


_NOT_A_READER = (
    "The domains' state is shown to the members of this bot's reader groups and its approvers; ask your "
    "Kerberos admins to add you to a reader group."
)


def home_view(
    page: HomePage, button_value: Callable[[ChangeRequest], str], now: datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    blocks: list[Block] = [HeaderBlock(text="Entra Kerberos"), SectionBlock(text=MarkdownTextObject(text="*Domains*"))]
    # what the rest of the page takes; the domains get what is left of Slack's 100 blocks
    rest = 2 + max(1, 3 * len(page.to_approve)) + 2 + max(1, len(page.mine)) + 3
    rest += 2 + len(page.to_run) if page.to_run else 0
    no_domains = "No domains are configured." if page.reads_domains else _NOT_A_READER
    blocks += _domain_blocks(page.domains, HOME_MAX_BLOCKS - len(blocks) - rest) or [
        SectionBlock(text=MarkdownTextObject(text=no_domains))
    ]
    if page.to_run:  # operator-executes mode: only for whom something waits
        blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text="*Handed to you to run*"))]
        lines = [_run_line(card) for card in page.to_run]
        blocks += [SectionBlock(text=MarkdownTextObject(text=clip(line, SECTION_TEXT))) for line in lines]
    blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text="*Waiting for your approval*"))]
    if not page.to_approve:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="Nothing waits for you.")))
    for card in page.to_approve:
        request = card.request
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(_request_line(card), SECTION_TEXT))))
        blocks.append(plain_context(f"Reason: {plain(request.reason, 200)}"))
        blocks.append(decision_buttons(f"home-{request.id}", button_value(request), HOME_APPROVE, HOME_DENY))
    blocks += [DividerBlock(), SectionBlock(text=MarkdownTextObject(text="*Your requests*"))]
    blocks += [SectionBlock(text=MarkdownTextObject(text=clip(_request_line(r), SECTION_TEXT))) for r in page.mine] or [
        SectionBlock(text=MarkdownTextObject(text="None yet: `/kerberos rotate` opens the request form."))
    ]
    setting = "off" if page.muted else "on"
    blocks += [
        DividerBlock(),
        SectionBlock(
            text=MarkdownTextObject(text=f"*Direct messages about your requests:* {setting}"),
            accessory=ButtonElement(
                text="Turn on" if page.muted else "Turn off", action_id=HOME_DMS, value="on" if page.muted else "off"
            ),
        ),
        ContextBlock(elements=[MarkdownTextObject(text=f"As of {now:%Y-%m-%d %H:%M} UTC")]),
    ]
    return View(type="home", blocks=blocks[:HOME_MAX_BLOCKS]).to_dict()
