"""What an action kind is made of, and the narrow port its functions use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from bot.domain.approvals import Action, ActionKind, ActionPolicy, ChangeRequest
from bot.domain.errors import UnknownDomainError, UsageError
from bot.domain.findings import RotationPolicy
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES, dns_name
from bot.domain.operators import Effect
from bot.domain.ports import ActiveDirectory, KerberosModule

T = TypeVar("T")


class PreflightError(UsageError):
    """The request cannot succeed; it is refused before any approver sees it."""


@dataclass(frozen=True)
class Ask:
    """What a requester asked for, before the pre-flight."""

    domain: str
    requester: str
    reason: str
    channel: str | None = None
    top_level_names: tuple[str, ...] = DEFAULT_TOP_LEVEL_NAMES  # setup only
    origin: str = ""  # "<team>/<app>/<channel>": approvals count only from there
    twice: bool = False  # rotate: a double rotation (the second is filed after the 24-hour window)
    follows: str | None = None  # rotate: the second of a double rotation, after this request
    approved_with: str | None = None  # the second rotation, approved together with this first one
    second_with_first: bool = False  # set by the intake from the policy: the plan says who approves the second


@dataclass(frozen=True)
class Draft:
    """What a pre-flight that let the request through decided: the plan approvers see, and what the
    carry-out re-checks."""

    plan: tuple[str, ...]
    expected_key_version: int | None = None
    top_level_names: tuple[str, ...] = ()
    # the change is as dangerous as removing everything (a setup that takes over another tenant's
    # server): it needs as many approvals as remove-all, if that asks for more
    as_strong_as_removal: bool = False


@dataclass(frozen=True)
class ActionContext:
    """All an action's plan and carry-out may see of the bot: the domains' directories, the module (to
    read; a change goes through ``Run.call``), the clock, the forest roots, the rotation policy and the
    approval policies (a refusal says what forcing would take)."""

    directories: dict[str, ActiveDirectory]  # by DNS name
    module: KerberosModule
    now: Callable[[], datetime]
    rotation: RotationPolicy
    policies: Mapping[Action, ActionPolicy]
    forest_roots: Mapping[str, str] = field(default_factory=dict)  # domain -> its forest root (absent: itself)

    def directory(self, domain: str) -> ActiveDirectory:
        wanted = dns_name(domain)
        if wanted not in self.directories:
            raise UnknownDomainError(domain, list(self.directories))
        return self.directories[wanted]

    def forest_root(self, domain: str) -> str:
        return self.forest_roots.get(domain, domain)


class JournalledCall(Protocol):
    """The one step that changes AD and Entra: re-validated right before, journalled around it."""

    def __call__(self, cmdlet: str, call: Awaitable[T]) -> Awaitable[T]: ...


@dataclass(frozen=True)
class Run:
    """One approved request being carried out: the request, its journalled module call, a journal line."""

    request: ChangeRequest
    call: JournalledCall
    note: Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    succeeded: bool
    text: str


Preflight = Callable[[ActionContext, ActiveDirectory, Ask], Awaitable[Draft]]
CarryOut = Callable[[ActionContext, Run], Awaitable[Outcome]]


@dataclass(frozen=True)
class Handing:
    """An approved change as an operator runs it: the exact command, and the effect the bot looks for."""

    command: str
    effect: Effect


# the change for an operator: the request, and the operator's Entra account (their -UserPrincipalName)
HandOver = Callable[[ActionContext, ChangeRequest, str], Awaitable[Handing]]


@dataclass(frozen=True)
class ActionSpec:
    """One action kind, whole: its kind (title, configuration key, default policy), its pre-flight and plan,
    its carry-out, and what an operator runs in its place."""

    kind: ActionKind
    preflight: Preflight = field(repr=False)
    carry_out: CarryOut = field(repr=False)
    # what an operator runs instead (operator-executes mode); None: it changes nothing, so nobody runs it
    hand_over: HandOver | None = field(default=None, repr=False)

    @property
    def action(self) -> Action:
        return self.kind.action


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "never, by its metadata"
