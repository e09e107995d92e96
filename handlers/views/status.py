"""The /kerberos status reply: per domain, the health, the findings and what Get-AzureAdKerberosServer shows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.approvals import Freeze
from bot.domain.findings import Health, Severity
from bot.services.status import DomainStatus
from handlers.replies import Reply, escape, person, plain
from handlers.views.blocks import FIELD_TEXT, MAX_BLOCKS, SECTION_TEXT, clip

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


def field_text(value: object) -> str:
    """A field as the module prints it: empty when unset, times in UTC to the second."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def domain_status_blocks(status: DomainStatus) -> list[Block]:
    diag = status.diagnosis
    lines = []
    for finding in sorted(diag.findings, key=lambda f: -f.severity):
        line = f"{SEVERITY_ICON[finding.severity]} {escape(finding.summary)}"
        if finding.advice and finding.severity >= Severity.INFO:
            line += f"\n      _{escape(finding.advice)}_"
        lines.append(line)
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"Kerberos status: {status.domain}", 150)),
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(f"{HEALTH_ICON[diag.health]} *{diag.headline}*\n" + "\n".join(lines), SECTION_TEXT)
            )
        ),
    ]
    if status.report is not None:
        report = status.report
        on_prem = [(name, field_text(value)) for name, value in report.on_prem_fields()]
        cloud = [(name, field_text(value)) for name, value in report.cloud_fields()]
        if report.cloud_trust_display and report.cloud_top_level_names:  # the module prints them with the trust
            cloud[-1] = (
                "CloudTrustDisplay",
                f"{report.cloud_trust_display} ({', '.join(report.cloud_top_level_names)})",
            )
        tdo = status.on_prem.trusted_domain if status.on_prem else None
        if tdo is not None:  # not a field of Get-AzureAdKerberosServer: the trust keys' age, beside the key's
            on_prem.append(("TrustKeysUpdatedOn", field_text(tdo.keys_updated_on)))
        for group, unavailable in ((on_prem, False), (cloud, status.cloud_unavailable is not None)):
            blocks.append(
                SectionBlock(
                    fields=[
                        MarkdownTextObject(
                            text=clip(
                                f"*{name}*\n" + ("_unavailable_" if unavailable else escape(value) if value else "—"),
                                FIELD_TEXT,
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
                            text=clip(
                                f":warning: The Cloud* fields could not be read: {escape(status.cloud_unavailable)}",
                                SECTION_TEXT,
                            )
                        )
                    ]
                )
            )
    if status.per_dc is not None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(_per_dc_text(status.per_dc), SECTION_TEXT))))
    context = [f"Checked {status.checked_at.strftime('%Y-%m-%d %H:%M:%S UTC')}"]
    if status.on_prem is not None:
        context.append(f"AD read from {escape(status.on_prem.read_from)}")
    if status.on_prem and status.on_prem.trusted_domain:
        tdo = status.on_prem.trusted_domain
        context.append(
            f"TDO {escape(tdo.partner)} (trustDirection {tdo.direction}, trustAttributes {tdo.attributes:#x})"
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(context), SECTION_TEXT))]))
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


def freeze_block(freeze: Freeze) -> ContextBlock:
    """A frozen domain, said beside its status (the reason, a person's words, as plain text)."""
    return ContextBlock(
        elements=[
            MarkdownTextObject(
                text=f":snowflake: Frozen until {freeze.until:%Y-%m-%d %H:%M} UTC by {person(freeze.by)}: no change "
                "runs here until then but an emergency rotation"
            ),
            PlainTextObject(text=f"Reason: {plain(freeze.reason, 200)}", emoji=False),
        ]
    )


# from this many domains on, a status opens with one line per domain and details only those that need someone
SUMMARY_FROM = 6
# the order a status shows its domains in: the ones that need someone first
_NEEDS_SOMEONE = {Health.BROKEN: 0, Health.UNKNOWN: 1, Health.DEGRADED: 2, Health.ABSENT: 3, Health.HEALTHY: 4}


def status_replies(statuses: Sequence[DomainStatus], freezes: Mapping[str, Freeze] | None = None) -> list[Reply]:
    """One or more in-channel messages (Slack takes at most 50 blocks in one), the unhealthy domains first; with
    many domains, a summary line each, and the full status of only those not healthy."""
    ordered = sorted(statuses, key=lambda s: (_NEEDS_SOMEONE[s.diagnosis.health], s.domain))
    if len(ordered) < SUMMARY_FROM:
        return _detailed(ordered, freezes)
    unhealthy = [s for s in ordered if s.diagnosis.health != Health.HEALTHY]
    return [_summary(ordered, freezes or {}), *_detailed(unhealthy, freezes)]


def _summary(statuses: Sequence[DomainStatus], freezes: Mapping[str, Freeze]) -> Reply:
    healthy = sum(s.diagnosis.health == Health.HEALTHY for s in statuses)
    head = f"Kerberos status of {len(statuses)} domains: {healthy} healthy"
    lines = [
        f"{HEALTH_ICON[s.diagnosis.health]} `{escape(s.domain)}` {escape(s.diagnosis.headline)}"
        + (" :snowflake: frozen" if s.domain in freezes else "")
        for s in statuses
    ]
    sections: list[list[str]] = [[]]
    for line in lines:
        if sections[-1] and len("\n".join([*sections[-1], line])) > SECTION_TEXT:
            sections.append([])
        sections[-1].append(line)
    blocks: list[Block] = [HeaderBlock(text=clip(head, 150))]
    blocks += [SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))) for chunk in sections[: MAX_BLOCKS - 2]]
    if len(statuses) > healthy:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="The domains that need someone follow in full.")]))
    return Reply(text=head, blocks=blocks[:MAX_BLOCKS], in_channel=True)


def _detailed(statuses: Sequence[DomainStatus], freezes: Mapping[str, Freeze] | None) -> list[Reply]:
    replies: list[Reply] = []
    blocks: list[Block] = []
    texts: list[str] = []
    for status in statuses:
        chunk = domain_status_blocks(status)
        frozen = (freezes or {}).get(status.domain)
        if frozen is not None:
            chunk.insert(1, freeze_block(frozen))
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
