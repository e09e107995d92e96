"""The request form: a modal that asks for what the typed command takes (action, domain, reason, options),
opened by `/kerberos rotate` (or remove-tdo, setup, remove-all) without arguments and by the global
shortcut. What it collects is read back here and checked field by field before anything is asked."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    ConversationSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.approvals import ACTION_KINDS

REQUEST_FORM = "kerberos_request_form"
REQUEST_SHORTCUT = "kerberos_request_change"
# subcommand -> what the form calls it: the kinds the form offers, in their order
FORM_ACTIONS = {kind.command: kind.title for kind in ACTION_KINDS.values() if kind.on_form}
OPTIONS = {
    "force": "--force: rotate within 24 hours of the last rotation (as many approvals as rotate_force: two, "
    "verified, by default). Only when the key must change now",
    "twice": "--twice: a double rotation; the second follows once the 24-hour window has passed, retiring the old key",
}
DEFAULT_TICKET_PATTERN = r"([A-Z][A-Z0-9]{1,9}-[0-9]{1,9}|[A-Z]{2,6}[0-9]{5,12})"  # CHG-1234, INC0012345


def _option(value: str, text: str) -> Option:
    return Option(value=value, text=PlainTextObject(text=text[:75], emoji=False))


def request_form(
    domains: Sequence[str], *, action: str | None = None, opened_in: str = "", team: str = ""
) -> dict[str, Any]:
    """The modal; ``opened_in`` is the channel it was opened from (a command), kept with it."""
    actions = [_option(name, title) for name, title in FORM_ACTIONS.items()]
    chosen = next((o for o in actions if o.value == action), None)
    domain_options = [_option(d, d) for d in domains[:100]]
    blocks = [
        InputBlock(
            block_id="action",
            label="What",
            element=StaticSelectElement(action_id="action", options=actions, initial_option=chosen),
        ),
        InputBlock(
            block_id="domain",
            label="Domain",
            element=StaticSelectElement(
                action_id="domain",
                options=domain_options,
                initial_option=domain_options[0] if len(domain_options) == 1 else None,
            ),
        ),
        InputBlock(
            block_id="reason",
            label="Why (the approvers read it on the card)",
            element=PlainTextInputElement(action_id="reason", multiline=True, min_length=3, max_length=500),
        ),
        InputBlock(
            block_id="ticket",
            label="Ticket (optional)",
            optional=True,
            hint="A change or incident number, such as CHG-1234 or INC0012345",
            element=PlainTextInputElement(action_id="ticket", max_length=40),
        ),
        InputBlock(
            block_id="options",
            label="Rotation options",
            optional=True,
            element=CheckboxesElement(action_id="options", options=[_option(k, v) for k, v in OPTIONS.items()][:10]),
        ),
        InputBlock(
            block_id="tlns",
            label="Top-level names (setup only; optional)",
            optional=True,
            hint="Sovereign clouds: e.g. usgovcloudapi.net,windows.net. Empty: windows.net",
            element=PlainTextInputElement(action_id="tlns", max_length=300),
        ),
        InputBlock(
            block_id="channel",
            label="Channel for the card",
            optional=True,
            hint="Where approvers see it, unless the domain has its own approvals channel (then it goes there)",
            element=ConversationSelectElement(action_id="channel", default_to_current_conversation=True),
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text="The bot checks first that the change can succeed; approvers from the configured groups "
                    "decide, never you."
                )
            ]
        ),
    ]
    view = View(
        type="modal",
        callback_id=REQUEST_FORM,
        title="Kerberos change",
        submit="Ask for approval",
        close="Cancel",
        private_metadata=json.dumps({"channel": opened_in, "team": team}),
        blocks=blocks,
    )
    return view.to_dict()


@dataclass(frozen=True)
class FormAnswers:
    """What the form's fields hold, unchecked."""

    action: str
    domain: str
    reason: str
    ticket: str
    options: frozenset[str]
    top_level_names: str
    channel: str
    opened_in: str


def _value(values: dict[str, Any], block: str) -> dict[str, Any]:
    field = values.get(block, {}).get(block, {})
    return field if isinstance(field, dict) else {}


def _text(field: dict[str, Any], key: str = "value") -> str:
    value = field.get(key)
    return value.strip() if isinstance(value, str) else ""


def form_answers(view: dict[str, Any]) -> FormAnswers:
    """The fields of a submitted form (Slack's ``view.state.values``), each as text or nothing."""
    values = view.get("state", {}).get("values", {})
    values = values if isinstance(values, dict) else {}
    chosen = [o.get("value") for o in _value(values, "options").get("selected_options") or [] if isinstance(o, dict)]
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        metadata = {}
    opened_in = metadata.get("channel") if isinstance(metadata, dict) else ""
    return FormAnswers(
        action=_text(_value(values, "action").get("selected_option") or {}),
        domain=_text(_value(values, "domain").get("selected_option") or {}),
        reason=_text(_value(values, "reason")),
        ticket=_text(_value(values, "ticket")),
        options=frozenset(v for v in chosen if isinstance(v, str)),
        top_level_names=_text(_value(values, "tlns")),
        channel=_text(_value(values, "channel"), "selected_conversation"),
        opened_in=opened_in if isinstance(opened_in, str) else "",
    )


def form_errors(
    answers: FormAnswers, domains: Sequence[str], *, has_approvals_channel: bool, ticket_pattern: str
) -> dict[str, str]:
    """What is wrong, by field (Slack shows each under its field); empty: the request can be asked."""
    errors: dict[str, str] = {}
    if answers.action not in FORM_ACTIONS:
        errors["action"] = "Choose what to do."
    if answers.domain not in domains:
        errors["domain"] = "Choose one of the configured domains."
    if len(answers.reason) < 3:
        errors["reason"] = "Say why, in a few words: the approvers read it."
    if answers.ticket and not re.fullmatch(ticket_pattern, answers.ticket):
        errors["ticket"] = "That does not look like a ticket number (such as CHG-1234 or INC0012345)."
    unknown = answers.options - set(OPTIONS)
    if unknown or (answers.options and answers.action != "rotate"):
        errors["options"] = "--force and --twice are for rotations only."
    if answers.top_level_names and answers.action != "setup":
        errors["tlns"] = "Top-level names are for setup only."
    channel = answers.channel or answers.opened_in
    if not has_approvals_channel and not re.fullmatch(r"[CG][A-Z0-9]{6,}", channel or ""):
        errors["channel"] = "Choose the channel for the card: this domain has no approvals channel of its own."
    return errors
