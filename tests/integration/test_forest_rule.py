"""The multi-domain forest rule on the closest real set-up Samba allows: the root and the child as
configured domains on real DCs (fabrikam.test configured with forest_root = contoso.test). Samba 4.17
cannot host a real child domain (shared/notes/samba-replication.md), so the two are separate forests
underneath; what a real forest adds is in docs/management-host.md ("Multi-domain forests")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from kerberos_sandbox.sandbox import Sandbox, sandbox

from bot.domain.approvals import RequestState
from handlers.views.cards import APPROVE_ACTION
from tests.integration.test_rotate_slack import click, request_via_slack, wait_for_state
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    root, child = sandbox_domains()
    domains = (root, replace(child, forest_root=root.name))
    async with sandbox(
        domains, workdir=Path(tmp_path_factory.mktemp("sandbox")), verified_approvals=False, seed_domains=False
    ) as running:
        yield running


async def approved(box: Sandbox, text: str) -> RequestState:
    request, value, ts = await request_via_slack(box, text)
    for approver in ("U0BOB", "U0CAROL")[: request.approvals_required]:
        assert await click(box, approver, APPROVE_ACTION, value, ts) == 200
    done = await wait_for_state(box, request.id, {RequestState.SUCCEEDED, RequestState.FAILED})
    assert done.state == RequestState.SUCCEEDED, done.outcome
    return done.state


async def test_the_child_waits_for_the_root_then_is_set_up_without_the_trust(box: Sandbox) -> None:
    root, child = (d.name for d in box.domains)
    # the child first: refused up front, with the order to follow (the module would fail with 0x549)
    ack, replies = await box.command(f"setup {child} -- child first")
    said = json.dumps([ack.body, *replies])
    assert "child domain of the forest" in said and f"/kerberos setup {root}" in said

    await approved(box, f"setup {root} -- the forest root first")
    root_state = await box.components.directories[root].read_kerberos_objects()
    assert root_state.server is not None and root_state.trusted_domain is not None

    request, _, _ = await request_via_slack(box, f"setup {child} -- now the child")
    assert "-SetupCloudTrust" not in request.plan[0] and any("lives in the forest root" in s for s in request.plan)
    await box.components.services.changes.decisions.cancel(request.id, "U0ALICE")  # type: ignore[union-attr]
    await approved(box, f"setup {child} -- now the child, for real")
    child_state = await box.components.directories[child].read_kerberos_objects()
    assert child_state.server is not None and child_state.trusted_domain is None

    # the child's status reads its DCs though the configured root's partitions are not there
    _, status = await box.command(f"status {child}")
    text = json.dumps(status)
    assert "KeyUpdatedFrom" in text and "Could not read" not in text and "noSuchObject" not in text
    # and its rotation rotates the service account alone: the trust lives in the root
    request, _, _ = await request_via_slack(box, f"rotate {child} --force -- child rotation")
    assert "-SetupCloudTrust" not in request.plan[0]
