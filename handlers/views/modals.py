"""Modals: the deny-reason dialog, and the message a dialog shows when its submission is refused."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import PlainTextObject, SectionBlock

from handlers.replies import typed

DENY_DIALOG = "kerberos_deny_reason"


def deny_dialog(private_metadata: str) -> dict[str, Any]:
    """Asks the approver for the reason; ``private_metadata`` carries the click it was opened for."""
    return {
        "type": "modal",
        "callback_id": DENY_DIALOG,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Deny the request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why? The requester and the channel will see it."},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "min_length": 3,
                    "max_length": 500,
                },
            }
        ],
    }


def message_modal(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "kerberos-bot"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [SectionBlock(text=PlainTextObject(text=typed(text)[:2900])).to_dict()],
    }
