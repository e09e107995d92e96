"""The Entra adapter against the HTTPS stand-in: msal really signs in, Graph really pages and fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from bot.adapters.entra_auth import EntraApp
from bot.adapters.entra_graph import GraphEntraDirectory
from bot.adapters.kerberos_module.cloud_store import CloudKerberosDomainStore
from bot.domain.errors import EntraAuthError, EntraForbidden, EntraThrottled, EntraUnavailable
from bot.domain.model import TRUST_DISPLAY_TYPE, CloudKerberosDomain
from bot.sandbox.entra_standin import EntraStandIn


def app_for(entra: EntraStandIn, **overrides: object) -> EntraApp:
    values: dict[str, object] = {
        "tenant_id": entra.tenant_id,
        "client_id": entra.client_id,
        "client_secret": entra.client_secret,
        "authority_host": entra.url,
        "ca_file": entra.ca_file,
        "timeout": 2.0,
    }
    values.update(overrides)
    return EntraApp(**values)  # type: ignore[arg-type]


def graph_for(entra: EntraStandIn, **overrides: object) -> GraphEntraDirectory:
    return GraphEntraDirectory(app_for(entra, **overrides), graph_url=entra.url)


@pytest.fixture
async def graph(entra: EntraStandIn) -> AsyncIterator[GraphEntraDirectory]:
    g = graph_for(entra)
    yield g
    await g.close()


async def test_tenant_is_read_with_a_real_token(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    tenant = await graph.tenant()
    assert tenant.id == entra.tenant_id
    assert tenant.verified_domains == ("contoso.test",)


async def test_token_is_cached_between_calls(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    now = datetime.now(UTC)
    await graph.kerberos_domain_events("contoso.test", since=now - timedelta(days=1))
    await graph.kerberos_domain_events("contoso.test", since=now - timedelta(days=1))
    assert entra.request_counts()["token"] == 1
    assert graph.token_requests == 1 and graph.graph_requests == 2


async def test_audit_events_filtered_by_domain_and_date_across_pages(
    graph: GraphEntraDirectory, entra: EntraStandIn
) -> None:
    now = datetime.now(UTC)
    for day in range(120):
        entra.add_audit_event("contoso.test", "Update kerberos domain", now - timedelta(days=day, minutes=1))
    entra.add_audit_event("fabrikam.test", "Add kerberos domain", now)
    events = await graph.kerberos_domain_events("contoso.test", since=now - timedelta(days=90), limit=200)
    assert len(events) == 90
    assert all(e.targets == ("contoso.test",) for e in events)
    assert events[0].at > events[-1].at  # newest first
    assert entra.request_counts()["graph"] == 2  # 50 a page: nextLink followed once


async def test_events_name_who_changed_the_cloud_object(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    entra.add_audit_event(
        "contoso.test", "Update kerberos domain", datetime.now(UTC), initiated_by_user="ga@contoso.test"
    )
    [event] = await graph.kerberos_domain_events("contoso.test")
    assert event.initiated_by == "ga@contoso.test" and event.activity == "Update kerberos domain"


async def test_certificate_credential(entra: EntraStandIn) -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)  # msal signs its assertion with RS256
    cert = ca.issue_cert("kerberos-bot.contoso.test", key_type=trustme.KeyType.RSA)
    thumbprint = entra.register_certificate(cert.cert_chain_pems[0].bytes())
    g = graph_for(
        entra, client_secret=None, private_key_pem=cert.private_key_pem.bytes().decode(), thumbprint=thumbprint
    )
    try:
        assert (await g.tenant()).id == entra.tenant_id
    finally:
        await g.close()


async def test_wrong_secret_names_the_aadsts_code(entra: EntraStandIn) -> None:
    g = graph_for(entra, client_secret="not-the-secret")
    with pytest.raises(EntraAuthError) as err:
        await g.tenant()
    assert "AADSTS7000215" in err.value.user_message and "secret" in err.value.user_message
    assert "not-the-secret" not in str(err.value)
    await g.close()


async def test_unknown_tenant(entra: EntraStandIn) -> None:
    g = graph_for(entra, tenant_id="00000000-0000-0000-0000-000000000000")
    with pytest.raises(EntraAuthError, match="check authority_host and tenant_id"):
        await g.tenant()
    await g.close()


async def test_expired_token_is_replaced_transparently(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    await graph.tenant()
    entra.expire_tokens()
    events = await graph.kerberos_domain_events("contoso.test")
    assert events == []
    assert entra.request_counts()["token"] == 2


async def test_401_twice_is_an_auth_error(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    entra.fail_next("graph", 401, count=2)
    with pytest.raises(EntraAuthError, match="401"):
        await graph.kerberos_domain_events("contoso.test")


async def test_missing_permission_is_forbidden_naming_it(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    entra.state.roles = ("Organization.Read.All",)
    with pytest.raises(EntraForbidden, match="AuditLog.Read.All"):
        await graph.kerberos_domain_events("contoso.test")


async def test_short_retry_after_is_waited_out(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    entra.fail_next("graph", 429, retry_after=0.2)
    assert await graph.kerberos_domain_events("contoso.test") == []


async def test_long_retry_after_tells_the_user_when(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    entra.fail_next("graph", 429, retry_after=30)
    with pytest.raises(EntraThrottled) as err:
        await graph.kerberos_domain_events("contoso.test")
    assert err.value.retry_after_seconds == 30 and "retry in 30 s" in err.value.user_message


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_unavailable(graph: GraphEntraDirectory, entra: EntraStandIn, status: int) -> None:
    entra.fail_next("graph", status, count=2)
    with pytest.raises(EntraUnavailable, match=str(status)):
        await graph.kerberos_domain_events("contoso.test")


async def test_slow_graph_times_out(graph: GraphEntraDirectory, entra: EntraStandIn) -> None:
    await graph.tenant()
    entra.fail_next("graph", None, delay=3.0)
    with pytest.raises(EntraUnavailable, match="did not answer in time"):
        await graph.kerberos_domain_events("contoso.test")


async def test_untrusted_certificate_is_unavailable(entra: EntraStandIn, tmp_path: object) -> None:
    from pathlib import Path

    other = Path(str(tmp_path)) / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    g = graph_for(entra, ca_file=other)
    with pytest.raises(EntraUnavailable, match="TLS"):
        await g.tenant()
    await g.close()


async def test_cloud_store_round_trip_records_audit_events(entra: EntraStandIn) -> None:
    store = CloudKerberosDomainStore(app_for(entra), base_url=entra.url)
    g = graph_for(entra)
    try:
        assert await store.get("contoso.test") is None
        domain = CloudKerberosDomain(
            25614,
            "krbtgt_25614",
            "contoso.test",
            53325,
            datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC),
            TRUST_DISPLAY_TYPE,
            ("windows.net",),
        )
        await store.put(domain)
        assert await store.get("CONTOSO.test") == domain
        await store.put(domain)
        await store.delete("contoso.test")
        assert await store.get("contoso.test") is None
        activities = [e.activity for e in await g.kerberos_domain_events("contoso.test")]
        assert sorted(activities) == ["Add kerberos domain", "Delete kerberos domain", "Update kerberos domain"]
    finally:
        await store.close()
        await g.close()
