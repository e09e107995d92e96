"""The review of an emergency rotation: filed by the bot after its second rotation; people acknowledge
it, and nothing is changed."""

from __future__ import annotations

from bot.actions.base import ActionContext, ActionSpec, Ask, Draft, Outcome, Run
from bot.domain.approvals import ACTION_KINDS, Action
from bot.domain.ports import ActiveDirectory


async def plan(ctx: ActionContext, directory: ActiveDirectory, ask: Ask) -> Draft:
    return Draft(
        (
            f"Acknowledge the emergency rotation {ask.follows} of {directory.domain_dns_name} and its second "
            "rotation: nothing is changed",
        )
    )


async def carry_out(ctx: ActionContext, run: Run) -> Outcome:
    # who acknowledged it is on the card (its approvals); the outcome is plain text, no chat markup
    people = len({a.approver for a in run.request.approvals})
    return Outcome(True, f"Reviewed: the emergency rotation {run.request.follows} was acknowledged by {people} people.")


SPECS = (ActionSpec(ACTION_KINDS[Action.EMERGENCY_REVIEW], plan, carry_out),)
