"""Operator-executes mode: an approved change a person runs on the management host with their own MFA
sign-in (``-UserPrincipalName``), which the bot then verifies from AD and Entra's audit log.

Microsoft's module has no way to sign in to Entra without a person when the account must use MFA; where a
tenant forbids any credential that skips it, the bot hands the approved change to an operator instead of
calling the module. What it hands over (who, until when, the exact command, the effect to look for) is
signed in the request's history; the verdict comes from the directory and Entra alone:

    handed over ─▶ AD unchanged ─▶ waiting (until the limit) ─▶ "nothing was changed before the limit"
              └─▶ AD changed ─▶ not the approved effect ─▶ attention, with what AD shows
                            └─▶ the effect ─▶ Entra: a change by someone else in the window ─▶ attention
                                         └─▶ Entra: the operator's change ─▶ verified
                                         └─▶ Entra: nothing yet ─▶ waiting (audit lag), at the limit: attention
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.domain.approvals import Action, ChangeRequest
from bot.domain.history import Event
from bot.domain.model import AuditEvent, OnPremState, world_of
from bot.domain.ports import SetServerOptions

# Entra writes its audit log within minutes: an event up to this long after the limit still counts, and the
# verdict waits this long for one
AUDIT_SLACK = timedelta(minutes=5)
# a change whose effect cannot be read (a DC or Graph down) this long after its limit is flagged, not left open
UNREADABLE_FOR = timedelta(hours=1)

Change = Literal["new", "same", "any"]


class ExecutionMode(enum.Enum):
    BOT = "bot"  # the bot calls the module (an unattended cloud credential on the management host)
    OPERATOR = "operator"  # a person runs it with their own MFA sign-in; the bot verifies


@dataclass(frozen=True)
class OperatorPolicy:
    """Which changes an operator runs (their domain's or their action's ``execution = "operator"``), who may
    be one, and how long they have."""

    groups: frozenset[str] = frozenset()  # the chat's user groups whose members may run approved changes
    time_limit: timedelta = timedelta(hours=2)
    look_every: timedelta = timedelta(minutes=1)  # how often the bot reads AD and Entra for the effect
    domains: frozenset[str] = frozenset()  # every change here is run by an operator
    actions: frozenset[Action] = frozenset()  # these actions are run by an operator in every domain

    def execution(self, domain: str, action: Action) -> ExecutionMode:
        if action == Action.EMERGENCY_REVIEW:  # it changes nothing: there is nothing to run
            return ExecutionMode.BOT
        if domain in self.domains or action in self.actions:
            return ExecutionMode.OPERATOR
        return ExecutionMode.BOT


@dataclass(frozen=True)
class Effect:
    """What the directory must show once the approved change is made, against the world it was approved on."""

    server: bool  # the Kerberos server exists afterwards
    trust: bool | None  # the trusted domain object exists afterwards (None: as it was)
    key: Change  # the service account's key
    trust_keys: Change  # the trusted domain object's keys
    activities: tuple[str, ...]  # the Entra audit activities (category KerberosDomain) that record it

    def encoded(self) -> dict[str, object]:
        return {
            "server": self.server,
            "trust": self.trust,
            "key": self.key,
            "trust_keys": self.trust_keys,
            "activities": list(self.activities),
        }

    @classmethod
    def decoded(cls, data: Mapping[str, object]) -> Effect:
        def change(value: object) -> Change:
            if value not in ("new", "same", "any"):
                raise ValueError(f"not a change: {value!r}")
            return value

        trust = data["trust"]
        activities = data["activities"]
        if not isinstance(data["server"], bool) or not (trust is None or isinstance(trust, bool)):
            raise ValueError("server and trust are booleans")
        if not isinstance(activities, list) or not all(isinstance(a, str) for a in activities):
            raise ValueError("activities is a list of names")
        return cls(data["server"], trust, change(data["key"]), change(data["trust_keys"]), tuple(activities))


@dataclass(frozen=True)
class Handover:
    """An approved change handed to an operator: signed in the request's history (``Event.HANDED_OVER``)."""

    operator: str  # their chat id
    upn: str  # their Entra account: what the audit log must show
    at: datetime
    until: datetime  # the time limit
    command: str  # exactly what they run on the management host
    effect: Effect

    def encoded(self) -> str:
        """The history entry's detail: canonical JSON (the entry's MAC covers it whole)."""
        return json.dumps(
            {
                "upn": self.upn,
                "until": self.until.astimezone(UTC).isoformat(),
                "command": self.command,
                "effect": self.effect.encoded(),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def decoded(cls, operator: str, at: datetime, detail: str) -> Handover | None:
        """The handover a (verified) history entry records, or None when its detail is not one."""
        try:
            data = json.loads(detail)
            return cls(
                operator,
                str(data["upn"]),
                at,
                datetime.fromisoformat(str(data["until"])),
                str(data["command"]),
                Effect.decoded(data["effect"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


def handover_of(request: ChangeRequest) -> Handover | None:
    """The handover its history records last (its entries are the bot's only once ``Signer.problems`` said so)."""
    for entry in reversed(request.history):
        if entry.event == Event.HANDED_OVER:
            return Handover.decoded(entry.actor, entry.at, entry.detail)
    return None


def _quoted(value: str) -> str:
    """A PowerShell single-quoted string (no expansion; a quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def command_line(cmdlet: str, domain: str, upn: str, options: SetServerOptions | None = None) -> str:
    """The command the operator runs, as the source document writes it: their own sign-in
    (``-UserPrincipalName``, which prompts for MFA) and the AD credential in ``$domainCred``."""
    parts = [cmdlet, "-Domain", _quoted(domain), "-UserPrincipalName", _quoted(upn), "-DomainCredential", "$domainCred"]
    if options is not None:
        if options.setup_cloud_trust:
            parts.append("-SetupCloudTrust")
            if options.top_level_names:
                parts += ["-TopLevelNames", _quoted(",".join(options.top_level_names))]
        if options.rotate_server_key:
            parts.append("-RotateServerKey")
        if options.force:
            parts.append("-Force")
    return " ".join(parts)


class Verdict(enum.Enum):
    WAITING = "waiting"  # nothing to conclude yet
    VERIFIED = "verified"  # exactly the approved effect, by the operator, in the window
    DIFFERENT = "different"  # AD shows another effect than the approved one
    SOMEONE_ELSE = "someone_else"  # Entra records a change in the window by someone else
    UNCONFIRMED = "unconfirmed"  # the effect is in AD, but Entra records no change by the operator
    NOTHING = "nothing"  # nothing changed before the limit
    UNREADABLE = "unreadable"  # AD or Entra's audit log could not be read for long after the limit


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    saw: str  # what the bot saw, in a sentence or two

    @property
    def final(self) -> bool:
        return self.verdict != Verdict.WAITING


def _parts(world: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in world.split(";") if "=" in part)


def _mismatches(effect: Effect, before: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    found = []
    has_server, has_trust = now.get("server") == "yes", now.get("tdo") == "yes"
    if has_server != effect.server:
        found.append("the Kerberos server is " + ("there" if has_server else "gone"))
    wanted_trust = effect.trust if effect.trust is not None else before.get("tdo") == "yes"
    if has_trust != wanted_trust:
        found.append("the trusted domain object is " + ("there" if has_trust else "gone"))
    for name, change, label in (
        ("key", effect.key, "the service account's key"),
        ("tdo_keys", effect.trust_keys, "the trusted domain object's keys"),
    ):
        moved = before.get(name) != now.get(name)
        if change == "new" and not moved:
            found.append(f"{label} did not change")
        elif change == "same" and moved:
            found.append(f"{label} changed")
    return found


def judge(
    handover: Handover,
    approved_world: str,
    state: OnPremState,
    events: Sequence[AuditEvent],
    now: datetime,
) -> Judgement:
    """What the directory and Entra's audit log say of a handed-over change at ``now``."""
    world = world_of(state)
    late = now > handover.until
    if world == approved_world:
        if late:
            return Judgement(Verdict.NOTHING, f"Nothing was changed in AD before the limit ({world}).")
        return Judgement(Verdict.WAITING, "AD is as approved: nothing was changed yet.")
    wrong = _mismatches(handover.effect, _parts(approved_world), _parts(world))
    if wrong:
        return Judgement(
            Verdict.DIFFERENT,
            f"AD shows another effect than the approved one: {'; '.join(wrong)} (approved on: {approved_world}; "
            f"now: {world}).",
        )
    window = [e for e in events if handover.at <= e.at <= handover.until + AUDIT_SLACK]
    mine = [e for e in window if (e.initiated_by or "").lower() == handover.upn.lower()]
    others = sorted({e.initiated_by or "an unknown initiator" for e in window if e not in mine})
    if others:
        return Judgement(
            Verdict.SOMEONE_ELSE,
            f"AD shows the approved effect, but Entra's audit log records a KerberosDomain change in the window by "
            f"{', '.join(others)}, not only by {handover.upn}.",
        )
    done = [e for e in mine if e.activity in handover.effect.activities]
    if done:
        latest = max(done, key=lambda e: e.at)
        return Judgement(
            Verdict.VERIFIED,
            f"AD shows exactly the approved effect ({world}), and Entra's audit log records "
            f"'{latest.activity}' by {handover.upn} at {latest.at:%Y-%m-%d %H:%M} UTC.",
        )
    if now > handover.until + AUDIT_SLACK:
        return Judgement(
            Verdict.UNCONFIRMED,
            f"AD shows the approved effect ({world}), but Entra's audit log records no KerberosDomain change by "
            f"{handover.upn} in the window: who made it is not proven.",
        )
    return Judgement(Verdict.WAITING, "AD shows the approved effect; Entra's audit log does not yet.")
