"""App Home with many domains: every domain within Slack's 100 blocks, the ones that need someone first,
and where too many to show, how many are left out and where to see them."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.domain.approvals import Action, ChangeRequest
from bot.domain.card import ApprovalTerms, RequestCard
from bot.domain.findings import Finding, Severity
from bot.services.home import DomainLine, HomePage
from handlers.views.home import HOME_MAX_BLOCKS, home_view
from tests.support.fakes import NOW


def line(n: int, *, unhealthy: bool = False) -> DomainLine:
    findings = (Finding("key_old", Severity.WARNING, "the key is 200 days old"),) if unhealthy else ()
    return DomainLine(f"d{n:03d}.contoso.test", 53000 + n, timedelta(days=40), NOW + timedelta(days=140), findings)


def request(n: int) -> ChangeRequest:
    return ChangeRequest(
        f"r{n:09d}",
        Action.ROTATE,
        "d001.contoso.test",
        "U0ALICE",
        "quarterly",
        ("plan",),
        NOW,
        NOW + timedelta(hours=4),
        1,
    )


def page(domains: int, unhealthy: set[int] | None = None) -> HomePage:
    lines = tuple(line(n, unhealthy=n in (unhealthy or set())) for n in range(domains))
    ten = tuple(RequestCard(request(n), "Rotate: d.contoso.test", ApprovalTerms(1, False, ()), NOW) for n in range(10))
    return HomePage("U0BOB", lines, ten, ten, muted=False)


def test_a_hundred_domains_all_show_within_slacks_limit_the_unhealthy_first() -> None:
    view = home_view(page(100, unhealthy={57, 93}), lambda r: r.id)
    assert len(view["blocks"]) <= HOME_MAX_BLOCKS
    text = json.dumps(view)
    assert all(f"d{n:03d}.contoso.test" in text for n in range(100))
    assert text.index("d057.contoso.test") < text.index("d000.contoso.test")  # the one that needs someone
    assert text.index("d093.contoso.test") < text.index("d000.contoso.test")
    assert "more domains" not in text


def test_more_domains_than_fit_are_counted_with_where_to_see_them() -> None:
    view = home_view(page(5000), lambda r: r.id)
    assert len(view["blocks"]) <= HOME_MAX_BLOCKS
    context = [b for b in view["blocks"] if b["type"] == "context" and "more domains" in json.dumps(b)]
    assert len(context) == 1 and "/kerberos status lists every one" in json.dumps(context[0])
