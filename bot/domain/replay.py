"""What a request's history says its state is, and where the record disagrees with it.

The record's own fields (its state, who decided, the outcome, the approvals) are the index the store's
scripts read; the history is what the bot signed. ``disagreements`` replays the history from its filing and
names every place the record says something the history does not: a transition the bot never makes, a
state no entry led to, an approver with no approval entry. Where the record is *behind* its history in a
way the bot itself causes, it is not a disagreement: a claim is recorded before its first step is signed,
and an expiry is the store's own doing (it makes nothing run).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.approvals import ChangeRequest, RequestState
from bot.domain.history import Event, HistoryEntry

S = RequestState

# the transitions the bot makes: (state before, event) -> state after
_NEXT: dict[tuple[RequestState, Event], RequestState] = {
    (S.PENDING, Event.DENIED): S.DENIED,
    (S.PENDING, Event.CANCELLED): S.CANCELLED,
    (S.APPROVED, Event.CANCELLED): S.CANCELLED,  # withdrawn while it waited for its change window
    (S.APPROVED, Event.STEP): S.EXECUTING,  # the first step is the claim's
    (S.EXECUTING, Event.STEP): S.EXECUTING,
    (S.EXECUTING, Event.WAITS): S.APPROVED,
    (S.EXECUTING, Event.SUCCEEDED): S.SUCCEEDED,
    (S.EXECUTING, Event.FAILED): S.FAILED,
    (S.EXECUTING, Event.ATTENTION): S.ATTENTION,
    (S.EXECUTING, Event.HANDED_OVER): S.WITH_OPERATOR,  # operator-executes mode
    (S.WITH_OPERATOR, Event.STEP): S.WITH_OPERATOR,  # "the operator says it ran"
    (S.WITH_OPERATOR, Event.HANDED_OVER): S.WITH_OPERATOR,  # taken over by another operator
    (S.WITH_OPERATOR, Event.SUCCEEDED): S.SUCCEEDED,  # verified
    (S.WITH_OPERATOR, Event.FAILED): S.FAILED,  # nothing before the limit
    (S.WITH_OPERATOR, Event.ATTENTION): S.ATTENTION,  # another effect, someone else's change, unconfirmed
    (S.APPROVED, Event.ATTENTION): S.ATTENTION,  # its worker died between the claim and its first step
    (S.ATTENTION, Event.STEP): S.ATTENTION,  # a worker flagged while it ran, still journalling
    (S.ATTENTION, Event.SUCCEEDED): S.ATTENTION,  # ... and finishing late: the flag stands
    (S.ATTENTION, Event.FAILED): S.ATTENTION,
}

# the record may be behind its history here: claimed before the first step is signed; expired by the store
_RECORD_MAY_SHOW: dict[RequestState, frozenset[RequestState]] = {
    S.PENDING: frozenset({S.EXPIRED}),
    S.APPROVED: frozenset({S.EXECUTING, S.EXPIRED}),
}


@dataclass
class Replayed:
    """The history, replayed: the state it leads to, who approved, who decided, the last outcome."""

    state: RequestState | None = None
    approvers: list[str] = field(default_factory=list)
    decided_by: str | None = None
    outcome: str | None = None
    wrong: list[str] = field(default_factory=list)


def replay(request: ChangeRequest, history: tuple[HistoryEntry, ...]) -> Replayed:
    out = Replayed()
    for number, entry in enumerate(history, start=1):
        if number == 1:
            if entry.event != Event.FILED:
                out.wrong.append("its history does not begin with its filing")
                return out
            out.state = S.APPROVED if entry.detail.startswith("approved with ") else S.PENDING
            continue
        assert out.state is not None
        if entry.event == Event.APPROVED and out.state == S.PENDING:
            if not request.approvable_at(entry.at):
                out.wrong.append(f"history entry {number} approves outside the request's life")
            if entry.actor in out.approvers:
                out.wrong.append(f"history entry {number} approves a second time")
            out.approvers.append(entry.actor)
            if len(out.approvers) >= request.approvals_required:
                out.state = S.APPROVED
            continue
        after = _NEXT.get((out.state, entry.event))
        if after is None:
            out.wrong.append(
                f"history entry {number} ({entry.event.value} while {out.state.value}) is no step the bot makes"
            )
            return out
        if entry.event in (Event.DENIED, Event.CANCELLED):
            out.decided_by = entry.actor
        if entry.event in (Event.SUCCEEDED, Event.FAILED, Event.ATTENTION) and out.state != S.ATTENTION:
            out.outcome = entry.detail
        out.state = after
    return out


def disagreements(request: ChangeRequest, history: tuple[HistoryEntry, ...]) -> list[str]:
    """Where ``request`` says what its (already verified) ``history`` does not; empty when it agrees."""
    if not history:
        return ["it has no history"]
    replayed = replay(request, history)
    found = list(replayed.wrong)
    if replayed.state is None or found:
        return found
    shown = request.state
    if shown != replayed.state and shown not in _RECORD_MAY_SHOW.get(replayed.state, frozenset()):
        found.append(f"its state ({shown.value}) is not the one its history leads to ({replayed.state.value})")
    if sorted(a.approver for a in request.approvals) != sorted(replayed.approvers):
        found.append("its approvals are not the ones its history records")
    if shown in (S.DENIED, S.CANCELLED) and request.decided_by != replayed.decided_by:
        found.append("who decided it is not who its history says")
    if shown in (S.SUCCEEDED, S.FAILED, S.ATTENTION) and request.outcome != replayed.outcome:
        found.append("its outcome is not the one its history records")
    return found
