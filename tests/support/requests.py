"""A change request as the suites write one by hand: a plain rotation of contoso.test, asked by Alice an hour
before it expires, with whatever fields a test changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.domain.approvals import Action, ChangeRequest
from tests.support.fakes import NOW


def a_request(**fields: Any) -> ChangeRequest:
    base = ChangeRequest(
        id="r1",
        action=Action.ROTATE,
        domain="contoso.test",
        requester="U0ALICE",
        reason="quarterly",
        plan=("Set-AzureADKerberosServer -Domain contoso.test -RotateServerKey",),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        approvals_required=1,
    )
    return replace(base, **fields)
