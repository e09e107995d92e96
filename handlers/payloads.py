"""The gate in front of Bolt: a request is checked for Slack's signature, then for its shape, before
anything parses it for meaning.

Bolt parses the body while it builds its request object, before it checks the signature, and a
body it cannot parse (``payload={not json``, a form labelled JSON, ``actions`` as a string) ends in
an HTTP 500. Here the raw bytes are verified first (401 when the signature is missing, stale or
wrong), then the shape Slack documents is checked (400 with a reason when a signed body is not
one), so whatever reaches a listener has the fields the listeners read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

MAX_SKEW_SECONDS = 300  # Slack's own rule: older requests may be replays
MAX_ID = 64  # Slack ids (U…, C…, T…) are short; anything longer is not one
INTERACTION_TYPES = frozenset(
    {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"}
)


@dataclass(frozen=True)
class Refusal:
    status: int  # 401: not from Slack; 400: from Slack (signed) but not a body Slack sends
    reason: str


def verify_signature(
    signing_secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    clock: Callable[[], float] = time.time,
) -> Refusal | None:
    """Slack's v0 signature over the raw bytes; ``None`` when it holds."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp.isdigit() or len(timestamp) > 12 or not signature:
        return Refusal(401, "missing or malformed Slack signature headers")
    if abs(clock() - int(timestamp)) > MAX_SKEW_SECONDS:
        return Refusal(401, "stale Slack request timestamp")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return Refusal(401, "invalid Slack signature")
    return None


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID


def _object_with_id(payload: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict) or not _is_id(value.get("id")):
        return f"`{key}` must be an object with an id"
    return None


def _interaction_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "the interaction payload is not a JSON object"
    kind = payload.get("type")
    if kind not in INTERACTION_TYPES:
        return "unknown interaction type"
    for key, required in (("user", True), ("team", False), ("channel", False)):
        if (problem := _object_with_id(payload, key, required=required)) is not None:
            return problem
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or not actions:
            return "`actions` must be a non-empty list"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "every action needs an action_id"
            if "value" in action and not isinstance(action["value"], str):
                return "an action's value must be a string"
        if "response_url" in payload and not isinstance(payload["response_url"], str):
            return "`response_url` must be a string"
    if kind in ("view_submission", "view_closed"):
        view = payload.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
            return "`view` must be an object with a callback_id"
        if not isinstance(view.get("private_metadata", ""), str):
            return "`view.private_metadata` must be a string"
        state = view.get("state", {})
        if not isinstance(state, dict) or not isinstance(state.get("values", {}), dict):
            return "`view.state.values` must be an object"
    return None


EVENT_TYPES = frozenset({"event_callback", "url_verification"})  # the Events API's JSON envelopes
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Parsed:
    """A signed body with the shape Slack sends, parsed once: what Bolt dispatches on."""

    body: dict[str, Any]


def parse_slack_body(body: bytes, content_type: str) -> Parsed | str:
    """The body parsed as Slack sends it, or what is wrong with it. Slash commands and interactions come as
    forms, the Events API as JSON envelopes; nothing else is Slack's (a command sent as JSON or as text
    is not one). Bolt is handed this parse: its own takes any form whose text holds the word "payload"
    (in a reason, a channel's name) for an interaction and answers 404."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json":
        try:
            document = json.loads(text)
        except ValueError:
            return "the body is labelled JSON but is not JSON"
        if not isinstance(document, dict):
            return "the JSON body is not an object"
        if document.get("type") not in EVENT_TYPES:
            return "a JSON body must be an Events API envelope (slash commands and interactions are forms)"
        return Parsed(document)
    if media != FORM:
        return f"Slack sends forms or JSON, not {media or 'a body without a content type'}"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        if len(form["payload"]) != 1:
            return "more than one payload"
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "the interaction payload is not JSON"
        problem = _interaction_problem(payload)
        return Parsed(payload) if problem is None else problem
    if any(len(values) != 1 for values in form.values()):
        return "a field appears more than once"
    fields = {key: values[0] for key, values in form.items()}
    if "ssl_check" in form:
        return Parsed(fields)
    if "command" in form:
        for key in ("user_id", "channel_id"):
            if not _is_id(fields.get(key, "")):
                return f"a slash command needs {key}"
        return Parsed(fields)
    return "neither a slash command nor an interaction"


def gate(signing_secret: str, body: bytes, headers: Mapping[str, str]) -> Refusal | Parsed:
    """The signature first, then the shape; a ``Parsed`` body goes on to Bolt."""
    refusal = verify_signature(signing_secret, body, headers)
    if refusal is not None:
        return refusal
    parsed = parse_slack_body(body, headers.get("Content-Type", ""))
    return Refusal(400, parsed) if isinstance(parsed, str) else parsed
