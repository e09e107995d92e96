"""What a freeze and its early end say, wherever they were made (the command, or the bot's sign-in page
where the policy asks a verified sign-in first), and the sign-in prompt that comes before them then."""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.approvals import Freeze
from bot.services.changes.engine import ChangeEngine
from bot.services.verification import SignInLink
from handlers.commands.announce import announce_to
from handlers.replies import Reply, code, escape, person, plain

SIGN_IN_TO_HOLD = "kerberos_sign_in_hold"  # a link button: Slack still reports the click, which is acked


def frozen_text(freeze: Freeze) -> str:
    return (
        f"{freeze.domain} is frozen until {freeze.until:%Y-%m-%d %H:%M} UTC by {person(freeze.by)}: no change "
        "runs there until then but an emergency rotation. `/kerberos thaw " + freeze.domain + "` ends it sooner."
    )


def thawed_text(domain: str, by: str) -> str:
    return f"The freeze of {code(domain)} was ended by {person(by)}: changes run there again."


async def tell_frozen(
    client: AsyncWebClient, changes: ChangeEngine, alert_channel: str | None, freeze: Freeze, said_in: str
) -> None:
    """Everyone who follows the domain hears of it, the reason as text (a person's words, never markup)."""
    text = f":snowflake: {frozen_text(freeze)} Why: {escape(plain(freeze.reason))}"
    await announce_to(client, changes, alert_channel, freeze.domain, text, said_in=said_in)


async def tell_thawed(
    client: AsyncWebClient, changes: ChangeEngine, alert_channel: str | None, domain: str, by: str, said_in: str
) -> None:
    await announce_to(client, changes, alert_channel, domain, f":sunny: {thawed_text(domain, by)}", said_in=said_in)


def hold_sign_in_prompt(what: str, link: SignInLink) -> Reply:
    """Shown only to the person who asked: the sign-in made for this freeze (or its end) only."""
    head = f"{what} needs a fresh Entra sign-in with MFA as *{escape(link.expected_user)}*."
    tail = (
        f"The link works once, for this only, until {link.expires_at:%H:%M} UTC; the bot's page then names what "
        "it does and asks you to confirm it. Do not forward it. The bot keeps no token."
    )
    return Reply(
        text=f"Sign in to Entra ID as {link.expected_user}: {link.url}",
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(text=f":closed_lock_with_key: {head}"),
                accessory=ButtonElement(text="Sign in", action_id=SIGN_IN_TO_HOLD, url=link.url, style="primary"),
            ),
            ContextBlock(elements=[MarkdownTextObject(text=tail)]),
        ],
    )
