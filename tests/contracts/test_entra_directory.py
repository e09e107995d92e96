"""The EntraDirectory port: FakeEntra and the Graph adapter on the Entra stand-in answer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from kerberos_sandbox.entra_standin import EntraStandIn

from bot.adapters.entra.graph import GraphEntraDirectory
from bot.domain.ports import EntraDirectory
from tests.support.entra import entra_app
from tests.support.fakes import FakeEntra, audit_event

pytest_plugins = ["tests.support.entra"]

AddEvent = Callable[[str, str, datetime], None]


@dataclass
class Subject:
    entra: EntraDirectory
    add_event: AddEvent


@pytest.fixture(params=["fake", "graph"])
def subject(request: pytest.FixtureRequest) -> Subject:
    """The fake, or the real adapter; only the real one starts what it needs (so `--fast` starts nothing)."""
    subject: Subject = request.getfixturevalue(f"{request.param}_subject")
    return subject


@pytest.fixture
async def fake_subject() -> AsyncIterator[Subject]:
    fake = FakeEntra()

    def add_fake(domain: str, activity: str, at: datetime) -> None:
        event = audit_event(domain, at, activity)
        fake.events.append(event.__class__(**{**event.__dict__, "id": f"{event.id}-{len(fake.events)}"}))

    yield Subject(fake, add_fake)


@pytest.fixture
async def graph_subject(entra_standin: EntraStandIn) -> AsyncIterator[Subject]:
    standin = entra_standin
    graph = GraphEntraDirectory(entra_app(standin), graph_url=standin.url)

    def add_graph(domain: str, activity: str, at: datetime) -> None:
        standin.add_audit_event(domain, activity, at, initiated_by_user="admin@contoso.test")

    yield Subject(graph, add_graph)
    await graph.close()


async def test_the_tenant_names_its_verified_domains(subject: Subject) -> None:
    tenant = await subject.entra.tenant()
    assert tenant.id and "contoso.test" in tenant.verified_domains


async def test_events_are_this_domains_newest_first_since_and_up_to_the_limit(subject: Subject) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for days, domain, activity in (
        (40, "contoso.test", "Add kerberos domain"),
        (10, "contoso.test", "Update kerberos domain"),
        (5, "fabrikam.test", "Update kerberos domain"),
        (2, "contoso.test", "Update kerberos domain"),
        (1, "contoso.test", "Delete kerberos domain"),
    ):
        subject.add_event(domain, activity, now - timedelta(days=days))
    events = await subject.entra.kerberos_domain_events("contoso.test", since=now - timedelta(days=30))
    assert [e.at for e in events] == [now - timedelta(days=d) for d in (1, 2, 10)]
    assert events[0].activity == "Delete kerberos domain"
    assert all("contoso.test" in e.targets for e in events)
    limited = await subject.entra.kerberos_domain_events("contoso.test", limit=2)
    assert [e.at for e in limited] == [now - timedelta(days=1), now - timedelta(days=2)]


async def test_a_domain_without_events_has_none(subject: Subject) -> None:
    assert await subject.entra.kerberos_domain_events("nowhere.test") == []
