"""The periodic digest: per domain, the key's age against its policy, the rotations done, the requests
refused or expired, and the drift the watch saw in the period."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.services.lifecycle import Digest, DomainDigest
from handlers.replies import Reply, escape
from handlers.views.blocks import MAX_BLOCKS, SECTION_TEXT, clip


def _age(line: DomainDigest) -> str:
    if line.key_age is None:
        return ":grey_question: key age unknown (the domain could not be read)"
    days = line.key_age.days
    limit, what = (line.rotate_every, "rotates every") if line.rotate_every else (line.max_age, "policy: at most")
    icon = ":large_yellow_circle:" if line.key_age >= limit else ":large_green_circle:"
    return f"{icon} key {days} days old ({what} {limit.days} days)"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def digest_message(digest: Digest) -> Reply:
    days = max(1, round((digest.until - digest.since) / timedelta(days=1)))
    title = f"Kerberos digest: the last {days} days"
    blocks: list[Block] = [HeaderBlock(text=clip(title, 150))]
    for line in digest.domains:
        text = (
            f"*{line.domain}*: {_age(line)}\n"
            f"{_count(line.rotations, 'rotation', 'rotations')} done · "
            f"{_count(line.refused, 'request', 'requests')} denied or failed · "
            f"{_count(line.expired, 'request', 'requests')} expired"
        )
        if line.drift:
            text += "\nDrift seen: " + "; ".join(escape(summary) for summary in line.drift[:5])
            if len(line.drift) > 5:
                text += f" (and {len(line.drift) - 5} more)"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT))))
    blocks.append(
        ContextBlock(
            elements=[MarkdownTextObject(text=f"{digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC")]
        )
    )
    return Reply(text=title, blocks=blocks[:MAX_BLOCKS], in_channel=True)
