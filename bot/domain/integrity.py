"""Integrity of what the bot keeps in Redis and puts on buttons: HMAC-SHA256 under a key that never
lives in Redis (a secret the configuration names).

Anything that can write to Redis could otherwise create an approved ``remove-all`` with no
approvals, or add approvals to a real request. Every request record and every approval carries a
MAC over its authoritative fields; the worker checks them before it acts, and a record that does
not verify is refused, flagged and audited. A button carries only the request's id and a MAC of
it, so a crafted value names no request the bot did not make.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from bot.domain.approvals import Approval, ChangeRequest
from bot.domain.history import Event, HistoryEntry
from bot.domain.ports import DeferredCommand
from bot.domain.replay import disagreements

_SEPARATOR = "\x1f"  # the first version's separator (records written before canonical encoding)
VERSION = "v2:"  # MACs over a canonical encoding: one JSON array, so no field's text can move into another
BUTTON_MAC_LENGTH = 22  # hex characters: 88 bits against forgery, short enough for a button


# one encoder for every MAC: json.dumps with options other than its defaults builds a new one each call
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


class Signer:
    """MACs of requests, approvals and button values; ``purpose`` keeps each kind apart."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the integrity key must have at least 32 bytes")
        self._key = key
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied for each MAC: the key is hashed once

    def _mac(self, purpose: str, *parts: str) -> str:
        """The MAC of ``parts`` in a canonical encoding (a JSON array: each part's bounds are its own, so
        ("a", "bc") and ("ab", "c") differ whatever the text holds)."""
        keyed = self._keyed.copy()
        keyed.update(_CANONICAL.encode([purpose, *parts]).encode("utf-8"))
        return VERSION + keyed.hexdigest()

    def _legacy_mac(self, purpose: str, *parts: str) -> str | None:
        """The first version's MAC (parts joined with a separator), still accepted for the records written
        with it, but only where no part holds the separator: there the joining is unambiguous; where one
        does, text could have moved between fields under the same MAC, so it never verifies."""
        if any(_SEPARATOR in part for part in (purpose, *parts)):
            return None
        message = _SEPARATOR.join((purpose, *parts)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _verifies(self, mac: str, purpose: str, *parts: str) -> bool:
        if mac.startswith(VERSION):
            return hmac.compare_digest(mac, self._mac(purpose, *parts))
        legacy = self._legacy_mac(purpose, *parts)
        return legacy is not None and hmac.compare_digest(mac, legacy)

    def request_mac(self, request: ChangeRequest) -> str:
        return self._mac("request", *self._request_parts(request))

    def _request_parts(self, request: ChangeRequest) -> tuple[str, ...]:
        return (
            request.id,
            request.action.value,
            request.domain,
            request.requester,
            request.reason,
            json.dumps(list(request.plan)),
            _iso(request.created_at),
            _iso(request.expires_at),
            str(request.approvals_required),
            request.origin,
            "" if request.expected_key_version is None else str(request.expected_key_version),
            ",".join(request.top_level_names),
            request.requester_upn or "",
            # only when set, so the MACs of records written before these fields still verify
            *(["twice"] if request.twice else []),
            *([f"follows:{request.follows}"] if request.follows else []),
            *(["second_with_first"] if request.second_with_first else []),
            *([f"approved_with:{request.approved_with}"] if request.approved_with else []),
            *([f"world:{request.world}"] if request.world else []),
            *([f"requester_oid:{request.requester_oid}"] if request.requester_oid else []),
        )

    def approval_mac(self, request_id: str, approval: Approval) -> str:
        return self._mac("approval", *self._approval_parts(request_id, approval))

    def _approval_parts(self, request_id: str, approval: Approval) -> tuple[str, ...]:
        identity = approval.identity
        return (
            request_id,
            approval.approver,
            _iso(approval.at),
            identity.object_id if identity else "",
            identity.upn if identity else "",
            _iso(identity.signed_in_at) if identity else "",
            str(bool(identity.mfa)) if identity else "",
        )

    def after_mac(self, request_id: str, world: str) -> str:
        """The world a change left, as the bot read it right after: what a second rotation is bound to."""
        return self._mac("after", request_id, world)

    def wait_mac(self, request_id: str, until: datetime) -> str:
        """The bot deferred this request to its change window at ``until``: a time nobody else can move."""
        return self._mac("waits", request_id, _iso(until))

    def entry(self, request_id: str, event: Event, actor: str, at: datetime, detail: str = "") -> HistoryEntry:
        """A transition of ``request_id``, signed: the store appends it in the step that makes the transition."""
        unsigned = HistoryEntry(event, actor, at, detail)
        return HistoryEntry(event, actor, at, detail, self._mac("history", *self._entry_parts(request_id, unsigned)))

    @staticmethod
    def _entry_parts(request_id: str, entry: HistoryEntry) -> tuple[str, ...]:
        return (request_id, entry.event.value, entry.actor, _iso(entry.at), entry.detail)

    def history_problems(self, request: ChangeRequest) -> list[str]:
        """Entries of the request's history the bot did not sign, or else where the record says what its
        history does not (a state, an approver, a decision or an outcome no signed entry led to)."""
        forged = [
            f"history entry {number}"
            for number, entry in enumerate(request.history, start=1)
            if not (
                entry.mac.startswith(VERSION)
                and self._verifies(entry.mac, "history", *self._entry_parts(request.id, entry))
            )
        ]
        return forged or disagreements(request, request.history)

    def problems(self, request: ChangeRequest) -> list[str]:
        """What in a stored request does not carry a valid MAC, or disagrees with its signed history (empty:
        all of it is the bot's). A record written before histories were kept has none: it is refused."""
        return self.record_problems(request) + self.history_problems(request)

    def record_problems(self, request: ChangeRequest) -> list[str]:
        """What in the request's own fields and approvals does not carry a valid MAC."""
        found = []
        if not self._verifies(request.mac, "request", *self._request_parts(request)):
            found.append("the request record")
        if request.waits_until is not None and not self._verifies(
            request.waits_mac, "waits", request.id, _iso(request.waits_until)
        ):
            found.append("the time it waits for")
        if request.after and not (
            request.after_mac.startswith(VERSION)
            and self._verifies(request.after_mac, "after", request.id, request.after)
        ):
            found.append("the world it left")
        for approval in request.approvals:
            if not self._verifies(approval.mac, "approval", *self._approval_parts(request.id, approval)):
                found.append(f"the approval by {approval.approver}")
        return found

    def command_mac(self, command: DeferredCommand) -> str:
        """Every field of a queued command: a worker runs it as its user and answers at its reply address."""
        return self._mac("command", *self._command_parts(command))

    def command_is_ours(self, command: DeferredCommand) -> bool:
        return command.mac.startswith(VERSION) and self._verifies(command.mac, "command", *self._command_parts(command))

    @staticmethod
    def _command_parts(command: DeferredCommand) -> tuple[str, ...]:
        return (
            command.text,
            command.user_id,
            command.channel_id,
            command.reply_to,
            command.request_id,
            _iso(command.queued_at),
            command.team_id,
            command.app_id,
        )

    def text_mac(self, purpose: str, text: str) -> str:
        """A MAC of any text the bot keeps for later (a sign-in ticket), apart from every other kind."""
        return self._mac(f"text:{purpose}", text)

    def text_is_ours(self, purpose: str, text: str, mac: str) -> bool:
        return self._verifies(mac, f"text:{purpose}", text)

    def _button_mac(self, request_id: str) -> str:
        # one part, so the first encoding is unambiguous already; kept, so the buttons of cards posted
        # before stay valid
        message = _SEPARATOR.join(("button", request_id)).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:BUTTON_MAC_LENGTH]

    def button_value(self, request_id: str) -> str:
        return f"{request_id}.{self._button_mac(request_id)}"

    def request_id_of(self, value: str) -> str | None:
        """The request id a button value names, or None when the bot did not make the value."""
        request_id, dot, mac = value.partition(".")
        if not dot or len(mac) != BUTTON_MAC_LENGTH:
            return None
        return request_id if hmac.compare_digest(mac, self._button_mac(request_id)) else None
