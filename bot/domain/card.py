"""A change request as every surface shows it: the facts a card, a thread line, a direct message or a home
page draw from (people as chat ids, times, the state, the plan, what approving takes), and no markup of any
chat. Slack renders it as Block Kit (``handlers/views/cards.py``); the sandbox's console as plain text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.approvals import ACTION_KINDS, ChangeRequest, RequestState
from bot.domain.operators import Handover


@dataclass(frozen=True)
class ApprovalTerms:
    """What approving a request takes, from the policy of its stored action."""

    required: int
    verified: bool  # each approval needs an Entra sign-in with MFA
    groups: tuple[str, ...]  # the chat's user groups whose members may approve


@dataclass(frozen=True)
class RequestCard:
    request: ChangeRequest
    title: str  # the action's title and the domain
    terms: ApprovalTerms
    now: datetime  # the moment it describes (time left is counted from it)
    timing: str | None = None  # the change window's word on when it would run (None: nothing to say)
    handover: Handover | None = None  # handed to an operator: who runs it, until when, the exact command

    @property
    def with_operator(self) -> bool:
        """Waiting for its operator to run it (and the bot to see it)."""
        return self.handover is not None and self.request.state == RequestState.WITH_OPERATOR

    @property
    def decidable(self) -> bool:
        """Approve and Deny are offered: it waits for approvals."""
        return self.request.state == RequestState.PENDING

    @property
    def time_left(self) -> timedelta | None:
        """How long it still waits for approvals (None once it does not)."""
        if self.request.state != RequestState.PENDING:
            return None
        return max(self.request.expires_at - self.now, timedelta(0))

    @property
    def version(self) -> int:
        """How far its history goes: a rendering of a lower version is older than one of a higher."""
        return len(self.request.history)


def title_of(request: ChangeRequest) -> str:
    return f"{ACTION_KINDS[request.action].title}: {request.domain}"
