"""One card model, two surfaces: the core describes a request as facts (``queries.card``), Slack renders
it as Block Kit and the sandbox's console as plain text, from the same model and with nothing of Slack
(an import contract keeps ``kerberos_sandbox.render`` away from Slack's libraries and the handlers)."""

from __future__ import annotations

import json
from datetime import timedelta

from kerberos_sandbox.render import render_card

from bot.domain.approvals import Action, ActionPolicy, RequestState
from handlers.views.cards import request_card
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeGroups, on_prem_state

POLICIES = {Action.ROTATE: ActionPolicy(2, timedelta(hours=1), frozenset(), frozenset({"S0ADMINS"}))}


async def test_the_card_and_the_console_draw_one_model_and_only_slack_speaks_slack() -> None:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    engine = engine_on_fakes(
        directories=directories, policies=POLICIES, groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB", "U0CAROL"})})
    )
    request = await engine.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="<!channel> quarterly *now*", force=False
    )
    await engine.decisions.approve(request.id, "U0BOB")
    stored = await engine.queries.get(request.id)
    assert stored is not None
    card = engine.queries.card(stored)
    assert card.decidable and card.terms.required == 2 and card.terms.groups == ("S0ADMINS",)
    assert card.time_left == timedelta(hours=1) and card.version == 2  # filed, one approval

    slack = json.dumps(request_card(card, "button").payload()["blocks"])
    console = render_card(card, {"U0ALICE": "alice", "U0BOB": "bob"})
    for fact in (card.title, request.id, "1 of 2", request.plan[0]):
        assert fact in slack and fact in console
    assert "<@U0ALICE>" in slack and "<!subteam^S0ADMINS>" in slack and ":hourglass_flowing_sand:" in slack
    assert "@alice" in console and "@bob at" in console and "[ Approve ]  [ Deny ]" in console
    # the console's text carries none of Slack's markup; the requester's words stay as typed
    assert "<@" not in console and "<!subteam" not in console and ":hourglass" not in console
    assert "(Reason given by the requester: <!channel> quarterly *now*)" in console

    await engine.decisions.deny(request.id, "U0CAROL", "not this week")
    denied = engine.queries.card(await engine.queries.get(request.id))  # type: ignore[arg-type]
    assert denied.request.state == RequestState.DENIED and not denied.decidable and denied.time_left is None
    assert "Denied by @U0CAROL" in render_card(denied) and "[ Approve ]" not in render_card(denied)
