"""Operator-executes mode on fakes: a change handed to an operator who is away is taken over by another who may
run it (never its requester, nor an approver where two are needed), only while nothing happened to it: the new
handover is signed, names the taker's own command and account, and is what the bot verifies against."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import RequestState
from bot.domain.errors import UsageError
from bot.domain.history import Event
from bot.domain.operators import Verdict, handover_of
from bot.services.changes.errors import NotAllowed, RateLimited
from bot.services.changes.executor import HandedOver
from bot.services.changes.limits import RateLimits
from bot.services.changes.operators import Operators
from bot.services.home import HomeService
from handlers.views.home import home_view
from tests.unit.test_operator_mode import World


async def handed_over(world: World) -> tuple[str, Operators, str]:
    """An approved rotation handed to an operator: its id, the operators' service, who was named."""
    request_id = await world.approved_rotation()
    handed = await world.engine.executor.execute_next("worker")
    assert isinstance(handed, HandedOver)
    assert world.engine.operators is not None
    return request_id, world.engine.operators, handed.handover.operator


async def handed_to_olga(world: World) -> tuple[str, Operators]:
    request_id, operators, named = await handed_over(world)
    assert named == "U0OLGA"
    return request_id, operators


async def test_another_operator_takes_it_over_and_the_bot_verifies_their_change() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(world)
    taker = "U0OMAR" if named == "U0OLGA" else "U0OLGA"
    upn = f"{taker[2:].lower()}@contoso.test"
    world.clock.now += timedelta(minutes=30)

    taken, previous, handover = await operators.take_over(request_id, taker)

    assert previous.operator == named and handover.operator == taker and handover.upn == upn
    assert f"-UserPrincipalName '{upn}'" in handover.command  # their own sign-in, with MFA
    assert handover.until == world.clock() + timedelta(hours=2)  # a full time limit from now
    assert taken.state == RequestState.WITH_OPERATOR and handover_of(taken) == handover
    assert taken.history[-1].event == Event.HANDED_OVER
    assert world.engine.queries.card(taken).handover == handover  # the card shows it: the signed history holds
    # what the first one named would do now is someone else's change; the taker's is verified
    await world.operator_runs(upn=upn)
    [look] = await operators.look()
    assert look.judgement.verdict == Verdict.VERIFIED and upn in (look.request.outcome or "")


async def test_the_requester_an_outsider_or_the_named_operator_cannot_take_it_over() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0ALICE"}))
    request_id, operators = await handed_to_olga(world)
    with pytest.raises(NotAllowed, match="cannot run request"):
        await operators.take_over(request_id, "U0ALICE")  # its requester, though in the operator group
    with pytest.raises(NotAllowed, match="cannot run request"):
        await operators.take_over(request_id, "U0BOB")  # not an operator
    with pytest.raises(UsageError, match="already yours"):
        await operators.take_over(request_id, "U0OLGA")
    with pytest.raises(UsageError, match="no request"):
        await operators.take_over("nope", "U0OLGA")


async def test_an_approver_cannot_take_over_a_change_that_needs_two() -> None:
    world = World(required=2, operators=frozenset({"U0OLGA", "U0BOB"}))
    request_id, operators = await handed_to_olga(world)
    with pytest.raises(NotAllowed, match="cannot run request"):
        await operators.take_over(request_id, "U0BOB")


async def test_nothing_is_taken_over_once_ad_changed_or_the_limit_passed() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(world)
    await world.operator_runs(upn=f"{named[2:].lower()}@contoso.test")  # the one named is running it right now
    with pytest.raises(UsageError, match="may be running it"):
        await operators.take_over(request_id, "U0OMAR" if named == "U0OLGA" else "U0OLGA")

    late = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(late)
    late.clock.now += timedelta(hours=3)
    with pytest.raises(UsageError, match="time limit has passed"):
        await operators.take_over(request_id, "U0OMAR" if named == "U0OLGA" else "U0OLGA")
    stored = await late.store.get(request_id)
    kept = handover_of(stored) if stored is not None else None
    assert kept is not None and kept.operator == named


async def test_a_forged_handover_is_taken_over_by_nobody() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(world)
    stored = world.store.requests[request_id]
    forged = replace(stored.history[-1], actor="U0MALLORY")  # a writer of Redis names someone else
    world.store.requests[request_id] = replace(stored, history=(*stored.history[:-1], forged))
    with pytest.raises(UsageError, match="does not carry the bot's signature"):
        await operators.take_over(request_id, "U0OMAR" if named == "U0OLGA" else "U0OLGA")


async def test_the_named_operators_home_page_lists_the_change_handed_to_them() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(world)
    other = "U0OMAR" if named == "U0OLGA" else "U0OLGA"
    home = HomeService(world.engine)
    page = await home.page(named)
    assert [c.request.id for c in page.to_run] == [request_id]
    assert (await home.page(other)).to_run == ()
    view = json.dumps(home_view(page, world.engine.decisions.button_value))
    assert "Handed to you to run" in view and f"/kerberos done {request_id}" in view
    assert "Handed to you to run" not in json.dumps(
        home_view(await home.page(other), world.engine.decisions.button_value)
    )
    await operators.take_over(request_id, other)  # taken over: it moves to the taker's page
    assert (await home.page(named)).to_run == ()
    assert [c.request.id for c in (await home.page(other)).to_run] == [request_id]


async def test_taking_over_again_and_again_never_runs_past_twice_the_limit_from_the_first_handover() -> None:
    world = World(operators=frozenset({"U0OLGA", "U0OMAR"}))
    request_id, operators, named = await handed_over(world)
    first_at = world.clock()
    taker, other = ("U0OMAR", "U0OLGA") if named == "U0OLGA" else ("U0OLGA", "U0OMAR")
    world.clock.now += timedelta(minutes=90)
    _, _, handover = await operators.take_over(request_id, taker)
    assert handover.until == world.clock() + timedelta(hours=2)  # 90 minutes in: a full limit
    world.clock.now += timedelta(minutes=100)
    _, _, handover = await operators.take_over(request_id, other)
    assert handover.until == first_at + timedelta(hours=4)  # capped: twice the limit from the first handover


async def test_take_over_and_done_go_no_faster_than_clicks() -> None:
    # each try reads the operator groups, Entra and AD (a look at the tier-0 host): a refused user may not
    # hammer it, and the named operator's "done" (a look at AD and Entra's audit log) is limited alike
    world = World(operators=frozenset({"U0OLGA"}), rate_limits=RateLimits(clicks_per_minute=2))
    request_id, operators = await handed_to_olga(world)
    for _ in range(2):
        with pytest.raises(NotAllowed):
            await operators.take_over(request_id, "U0MALLORY")
    with pytest.raises(RateLimited, match="2 clicks a minute"):
        await operators.take_over(request_id, "U0MALLORY")
    for _ in range(2):
        await operators.done(request_id, "U0OLGA")
    with pytest.raises(RateLimited, match="2 clicks a minute"):
        await operators.done(request_id, "U0OLGA")
    world.clock.now += timedelta(minutes=1)
    with pytest.raises(NotAllowed):  # refilled: refused on its merits again
        await operators.take_over(request_id, "U0MALLORY")
