"""The Graph adapter against the HTTPS stand-in: msal really signs in, Graph really pages and fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from kerberos_sandbox.entra_standin import EntraStandIn

from bot.adapters.entra.graph import GraphEntraDirectory
from bot.domain.errors import EntraAuthError, EntraError, EntraForbidden, EntraThrottled, EntraUnavailable
from bot.domain.ports import EntraDirectory
from tests.support.entra import client_certificate, entra_app

pytest_plugins = ["tests.support.entra"]

DAY = timedelta(days=1)


@asynccontextmanager
async def directory(standin: EntraStandIn, **overrides: Any) -> AsyncIterator[GraphEntraDirectory]:
    g = GraphEntraDirectory(entra_app(standin, **overrides), graph_url=standin.url)
    try:
        yield g
    finally:
        await g.close()


def _implements_the_port(g: GraphEntraDirectory) -> EntraDirectory:
    return g  # mypy checks the Protocol here


# -- reading ------------------------------------------------------------------------------------


async def test_tenant_is_read_with_a_real_token(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    tenant = await _implements_the_port(entra_graph).tenant()
    assert tenant.id == entra_standin.tenant_id
    assert tenant.display_name == "Contoso (stand-in)"
    assert tenant.verified_domains == ("contoso.test",)
    assert entra_standin.request_counts() == {"discovery": 1, "token": 1, "graph": 1, "store": 0}


async def test_tenant_is_cached_for_a_few_minutes(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    first = await entra_graph.tenant()
    assert await entra_graph.tenant() == first
    assert entra_standin.request_counts()["graph"] == 1 and entra_graph.graph_requests == 1


async def test_token_is_cached_between_calls(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    since = datetime.now(UTC) - DAY
    await entra_graph.kerberos_domain_events("contoso.test", since=since)
    await entra_graph.kerberos_domain_events("contoso.test", since=since)
    await entra_graph.tenant()
    assert entra_standin.request_counts()["token"] == 1  # warm cache: no second trip to the token endpoint
    assert entra_graph.token_requests == 1 and entra_graph.graph_requests == 3


async def test_audit_events_filtered_by_category_domain_and_date_across_pages(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    now = datetime.now(UTC)
    for day in range(120):
        entra_standin.add_audit_event("contoso.test", "Update kerberos domain", now - timedelta(days=day, minutes=1))
    entra_standin.add_audit_event("fabrikam.test", "Add kerberos domain", now)
    entra_standin.add_audit_event("contoso.test", "Update user", now, category="UserManagement")
    events = await entra_graph.kerberos_domain_events("contoso.test", since=now - timedelta(days=90), limit=200)
    assert len(events) == 90
    assert all(e.targets == ("contoso.test",) and e.activity == "Update kerberos domain" for e in events)
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)  # newest first
    assert events[-1].at >= now - timedelta(days=90)
    assert entra_standin.request_counts()["graph"] == 2  # 50 a page: the nextLink (with the filter) followed once


async def test_a_next_link_to_another_host_is_not_followed_with_the_token(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    now = datetime.now(UTC)
    for minute in range(80):
        entra_standin.add_audit_event("contoso.test", "Update kerberos domain", now - timedelta(minutes=minute))
    entra_standin.state.next_link_base = "https://collector.example"  # an answer naming a host of its own
    try:
        events = await entra_graph.kerberos_domain_events("contoso.test", limit=200)
    finally:
        entra_standin.state.next_link_base = None
    assert len(events) == 50  # the first page only: the bot's token never went to the named host
    assert entra_graph.graph_requests == 1


async def test_limit_stops_paging(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    now = datetime.now(UTC)
    for minute in range(80):
        entra_standin.add_audit_event("contoso.test", "Update kerberos domain", now - timedelta(minutes=minute))
    events = await entra_graph.kerberos_domain_events("contoso.test", limit=5)
    assert len(events) == 5 and events[0].at > events[4].at
    assert entra_standin.request_counts()["graph"] == 1


async def test_events_name_who_changed_the_cloud_object(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    entra_standin.add_audit_event("contoso.test", "Update kerberos domain", at, initiated_by_user="ga@contoso.test")
    entra_standin.add_audit_event("contoso.test", "Add kerberos domain", at - DAY, initiated_by_app="AADConnect")
    update, add = await entra_graph.kerberos_domain_events("contoso.test")
    assert (update.activity, update.initiated_by, update.at, update.result) == (
        "Update kerberos domain",
        "ga@contoso.test",
        at,
        "success",
    )
    assert (add.activity, add.initiated_by) == ("Add kerberos domain", "AADConnect")


# -- signing in ---------------------------------------------------------------------------------


async def test_certificate_credential_with_thumbprint(entra_standin: EntraStandIn) -> None:
    cert = client_certificate(entra_standin)
    async with directory(
        entra_standin, client_secret=None, private_key_pem=cert.private_key_pem, thumbprint=cert.thumbprint
    ) as g:
        assert (await g.tenant()).id == entra_standin.tenant_id
        assert g.token_requests == 1


async def test_certificate_credential_with_public_certificate_only(entra_standin: EntraStandIn) -> None:
    cert = client_certificate(entra_standin)  # msal then signs PS256 and names the key by x5t#S256
    async with directory(
        entra_standin,
        client_secret=None,
        private_key_pem=cert.private_key_pem,
        public_certificate_pem=cert.public_certificate_pem,
    ) as g:
        assert (await g.tenant()).id == entra_standin.tenant_id


async def test_unregistered_certificate_names_aadsts700027(entra_standin: EntraStandIn) -> None:
    cert = client_certificate(entra_standin, register=False)
    async with directory(
        entra_standin, client_secret=None, private_key_pem=cert.private_key_pem, thumbprint=cert.thumbprint
    ) as g:
        with pytest.raises(EntraAuthError, match="AADSTS700027") as err:
            await g.tenant()
    assert "certificate" in err.value.user_message


async def test_wrong_secret_names_the_aadsts_code(entra_standin: EntraStandIn) -> None:
    async with directory(entra_standin, client_secret="not-the-secret") as g:
        with pytest.raises(EntraAuthError) as err:
            await g.tenant()
    assert "AADSTS7000215" in err.value.user_message and "secret" in err.value.user_message
    assert "not-the-secret" not in str(err.value) and entra_standin.client_secret not in str(err.value)
    assert entra_standin.request_counts()["graph"] == 0


async def test_wrong_client_id(entra_standin: EntraStandIn) -> None:
    async with directory(entra_standin, client_id="11111111-1111-1111-1111-111111111111") as g:
        with pytest.raises(EntraAuthError, match=r"AADSTS700016.*client_id"):
            await g.tenant()


async def test_unknown_tenant_names_aadsts90002(entra_standin: EntraStandIn) -> None:
    async with directory(entra_standin, tenant_id="00000000-0000-0000-0000-000000000000") as g:
        with pytest.raises(EntraAuthError, match=r"AADSTS90002.*tenant_id"):
            await g.tenant()


async def test_token_endpoint_throttling_tells_the_user_when(entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("token", 429, retry_after=30)
    async with directory(entra_standin) as g:
        with pytest.raises(EntraThrottled) as err:
            await g.tenant()
        assert err.value.retry_after_seconds == 30 and "retry in 30 s" in err.value.user_message
        with pytest.raises(EntraThrottled):  # msal replays the 429 until Retry-After ends: no new request
            await g.tenant()
    assert entra_standin.request_counts()["token"] == 1


async def test_token_endpoint_server_error_is_unavailable(entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("token", 500)
    async with directory(entra_standin) as g:
        with pytest.raises(EntraUnavailable, match="identity platform"):
            await g.tenant()


async def test_openid_discovery_failures(entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("discovery", 503)
    async with directory(entra_standin) as g:
        with pytest.raises(EntraUnavailable, match="identity platform"):
            await g.tenant()
    entra_standin.fail_next("discovery", 429, retry_after=20)
    async with directory(entra_standin) as g:
        with pytest.raises(EntraThrottled) as err:
            await g.tenant()
        assert err.value.retry_after_seconds == 20
        entra_standin.clear_faults()
    async with directory(entra_standin) as g:  # a new client discovers afresh and signs in
        assert (await g.tenant()).id == entra_standin.tenant_id


async def test_slow_token_endpoint_times_out(entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("token", None, delay=2.0)
    async with directory(entra_standin, timeout=0.5) as g:
        with pytest.raises(EntraUnavailable, match="did not answer in time"):
            await g.tenant()


async def test_untrusted_certificate_is_unavailable(entra_standin: EntraStandIn, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    async with directory(entra_standin, ca_file=other) as g:
        with pytest.raises(EntraUnavailable, match="TLS"):
            await g.tenant()


async def test_nothing_listening_is_unavailable(entra_standin: EntraStandIn) -> None:
    async with directory(entra_standin, authority_host="https://127.0.0.1:9") as g:
        with pytest.raises(EntraUnavailable, match="could not be reached"):
            await g.tenant()


# -- Graph's answers ----------------------------------------------------------------------------


async def test_expired_token_is_replaced_transparently(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    await entra_graph.tenant()
    entra_standin.expire_tokens()
    assert await entra_graph.kerberos_domain_events("contoso.test") == []
    assert entra_standin.request_counts()["token"] == 2 and entra_graph.token_requests == 2
    assert entra_standin.request_counts()["graph"] == 3  # tenant, the 401, the retry


async def test_401_twice_is_an_auth_error(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("graph", 401, count=2)
    with pytest.raises(EntraAuthError, match="401"):
        await entra_graph.kerberos_domain_events("contoso.test")
    assert entra_standin.request_counts()["token"] == 2  # one fresh token was tried, once


async def test_missing_audit_permission_is_forbidden_naming_it(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    entra_standin.state.roles = ("Organization.Read.All",)
    with pytest.raises(EntraForbidden, match=r"AuditLog\.Read\.All") as err:
        await entra_graph.kerberos_domain_events("contoso.test")
    assert "Organization.Read.All" not in err.value.user_message
    assert (await entra_graph.tenant()).id == entra_standin.tenant_id


async def test_missing_organization_permission_is_forbidden_naming_it(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    entra_standin.state.roles = ("AuditLog.Read.All",)
    with pytest.raises(EntraForbidden, match=r"Organization\.Read\.All"):
        await entra_graph.tenant()


@pytest.mark.parametrize("status", [429, 503])
async def test_short_retry_after_is_waited_out(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn, status: int
) -> None:
    entra_standin.add_audit_event("contoso.test", "Add kerberos domain", datetime.now(UTC))
    entra_standin.fail_next("graph", status, retry_after=0.2)
    assert len(await entra_graph.kerberos_domain_events("contoso.test")) == 1
    assert entra_standin.request_counts()["graph"] == 2


async def test_long_retry_after_tells_the_user_when(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    entra_standin.fail_next("graph", 429, retry_after=30)
    with pytest.raises(EntraThrottled) as err:
        await entra_graph.kerberos_domain_events("contoso.test")
    assert err.value.retry_after_seconds == 30 and "retry in 30 s" in err.value.user_message
    assert entra_standin.request_counts()["graph"] == 1  # not retried


async def test_throttled_twice_is_not_retried_forever(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    entra_standin.fail_next("graph", 429, retry_after=0.1, count=2)
    with pytest.raises(EntraThrottled):
        await entra_graph.kerberos_domain_events("contoso.test")
    assert entra_standin.request_counts()["graph"] == 2


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn, status: int
) -> None:
    entra_standin.fail_next("graph", status)
    with pytest.raises(EntraUnavailable, match=str(status)):
        await entra_graph.kerberos_domain_events("contoso.test")


async def test_long_503_says_when_to_retry(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("graph", 503, retry_after=120)
    with pytest.raises(EntraUnavailable, match="retry in 120 s"):
        await entra_graph.tenant()


async def test_slow_graph_times_out(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    await entra_graph.tenant()
    entra_standin.fail_next("graph", None, delay=2.0)
    with pytest.raises(EntraUnavailable, match="did not answer in time"):
        await entra_graph.kerberos_domain_events("contoso.test")


async def test_graph_404_is_an_entra_error(entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn) -> None:
    entra_standin.fail_next("graph", 404)
    with pytest.raises(EntraError, match="no resource"):
        await entra_graph.tenant()


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    from email.utils import format_datetime

    from bot.adapters.entra.app import _parse_retry_after

    assert _parse_retry_after("7") == 7.0 and _parse_retry_after(None) is None
    assert _parse_retry_after("soon") is None
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= (_parse_retry_after(in_a_minute) or 0) <= 61
