"""The request's MAC is over a canonical encoding: text cannot move between fields under the same MAC,
whatever a person typed (issue: a reason carrying the old separator let a Redis writer move text into the
plan, the times or the top-level names)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.approvals import ChangeRequest, RequestState
from bot.domain.errors import UsageError
from bot.domain.integrity import VERSION, Signer
from bot.services.changes.executor import Execution
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import NOW, FakeDirectory, FakeKerberosModule, on_prem_state
from tests.support.requests import a_request

KEY = b"k" * 32
FORTY_DAYS_AGO = NOW - timedelta(days=40)


def legacy_mac(*parts: str) -> str:
    """The first version's MAC: the parts joined with U+001F."""
    return hmac.new(KEY, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def legacy_request_mac(request: ChangeRequest) -> str:
    return legacy_mac(
        "request",
        request.id,
        request.action.value,
        request.domain,
        request.requester,
        request.reason,
        json.dumps(list(request.plan)),
        request.created_at.isoformat(),
        request.expires_at.isoformat(),
        str(request.approvals_required),
        request.origin,
        "",
        ",".join(request.top_level_names),
        request.requester_upn or "",
    )


def test_text_moved_from_the_reason_into_another_field_does_not_verify() -> None:
    signer = Signer(KEY)
    honest = a_request(reason='why"],["x')
    signed = replace(honest, mac=signer.request_mac(honest))
    assert signed.mac.startswith(VERSION) and signer.record_problems(signed) == []
    # the same characters, split differently between the reason and the plan
    moved = replace(signed, reason="why", plan=('"],["x' + signed.plan[0],))
    assert signer.record_problems(moved) == ["the request record"]


def test_a_first_version_mac_still_verifies_where_its_joining_is_unambiguous() -> None:
    signer = Signer(KEY)
    old = a_request()
    assert signer.record_problems(replace(old, mac=legacy_request_mac(old))) == []


def test_a_first_version_mac_over_a_field_holding_the_separator_never_verifies() -> None:
    signer = Signer(KEY)
    # the reason a requester typed carries the separator: the writer re-splits it into the top-level names
    typed = a_request(reason="q\x1f\x1f\x1fcontoso.test,windows.net")
    resplit = replace(typed, reason="q", top_level_names=("contoso.test", "windows.net"))
    for record in (typed, resplit):
        assert signer.record_problems(replace(record, mac=legacy_request_mac(typed))) == ["the request record"]


async def test_a_reason_with_a_control_character_is_refused_before_anything_is_recorded() -> None:
    store = FakeApprovalStore()
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    engine = engine_on_fakes(directories=directories, store=store)
    with pytest.raises(UsageError, match=r"reason holds control characters \(U\+001F\)"):
        await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q\x1fx", force=False)
    assert store.requests == {}


async def test_a_rotation_whose_stored_text_was_re_split_is_refused_and_nothing_runs() -> None:
    store = FakeApprovalStore()
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    }
    module = FakeKerberosModule.in_step(directories)
    engine = engine_on_fakes(directories=directories, store=store, module=module)
    request = await engine.intake.request_rotation(
        "contoso.test", requester="U0ALICE", reason="quarterly contoso.test,windows.net", force=False
    )
    await engine.decisions.approve(request.id, "U0BOB")
    stored = store.requests[request.id]
    store.requests[request.id] = replace(
        stored, reason="quarterly", top_level_names=("contoso.test", "windows.net"), state=RequestState.APPROVED
    )
    execution = await engine.executor.execute_next("w")
    assert isinstance(execution, Execution) and execution.request.state == RequestState.ATTENTION
    assert "the request record" in execution.outcome and module.set_calls == 0
