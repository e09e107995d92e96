"""The emulator's cloud half (KerberosDomain store) against the HTTPS stand-in, and the stand-in's
out-of-process controls."""

from __future__ import annotations

import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from kerberos_sandbox.entra_standin import ADMIN_HEADER, EntraStandIn

from bot.adapters.entra.graph import GraphEntraDirectory
from bot.adapters.kerberos_module.emulator.cloud_store import CloudKerberosDomainStore
from bot.domain.errors import EntraAuthError, EntraError, EntraForbidden, EntraThrottled, EntraUnavailable
from bot.domain.model import TRUST_DISPLAY_TYPE, CloudKerberosDomain
from tests.support.entra import entra_app

pytest_plugins = ["tests.support.entra"]

CONTOSO = CloudKerberosDomain(
    id=25614,
    display_name="krbtgt_25614",
    domain_dns_name="contoso.test",
    key_version=53325,
    key_updated_on=datetime(2022, 2, 24, 9, 3, 15, tzinfo=UTC),
)


async def activities(graph: GraphEntraDirectory, domain: str = "contoso.test") -> list[str]:
    return [e.activity for e in reversed(await graph.kerberos_domain_events(domain, limit=50))]


async def test_round_trip_records_audit_events(
    entra_cloud_store: CloudKerberosDomainStore, entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    store = entra_cloud_store
    assert await store.get("contoso.test") is None
    await store.put(CONTOSO)
    assert await store.get("CONTOSO.test.") == CONTOSO
    await store.put(CONTOSO)  # unchanged: Entra records nothing
    with_trust = replace(CONTOSO, trust_display=TRUST_DISPLAY_TYPE, top_level_names=("windows.net",))
    await store.put(with_trust)
    assert await store.get("contoso.test") == with_trust
    rotated = replace(with_trust, key_version=61002, key_updated_on=datetime.now(UTC).replace(microsecond=0))
    await store.put(rotated)
    assert await store.get("contoso.test") == rotated
    await store.delete("contoso.test")
    assert await store.get("contoso.test") is None
    await store.delete("contoso.test")  # already gone: nothing to do
    events = await entra_graph.kerberos_domain_events("contoso.test", limit=50)
    assert [e.activity for e in reversed(events)] == [
        "Add kerberos domain",
        "Update kerberos domain",  # trust set up
        "Update kerberos domain",  # the rotation logs two updates, as observed
        "Update kerberos domain",
        "Delete kerberos domain",
    ]
    assert all(e.targets == ("contoso.test",) and e.initiated_by == "kerberos-bot" for e in events)
    assert entra_standin.request_counts()["token"] == 2  # one for the store, one for Graph: both cached after
    assert store.token_requests == 1


async def test_seeded_domain_is_read_and_seeding_records_nothing(
    entra_cloud_store: CloudKerberosDomainStore, entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    entra_standin.put_kerberos_domain(CONTOSO)
    assert await entra_cloud_store.get("contoso.test") == CONTOSO
    assert entra_standin.kerberos_domain("contoso.test") == {
        "id": 25614,
        "displayName": "krbtgt_25614",
        "domainDnsName": "contoso.test",
        "keyVersion": 53325,
        "keyUpdatedOn": "2022-02-24T09:03:15Z",  # the stand-in writes times as Graph does
        "trustDisplay": None,
        "topLevelNames": [],
    }
    assert entra_standin.delete_kerberos_domain("contoso.test", audit=True)
    assert await entra_cloud_store.get("contoso.test") is None
    assert await activities(entra_graph) == ["Delete kerberos domain"]
    entra_standin.clear_data()
    assert await activities(entra_graph) == []


async def test_expired_token_is_replaced(
    entra_cloud_store: CloudKerberosDomainStore, entra_standin: EntraStandIn
) -> None:
    await entra_cloud_store.put(CONTOSO)
    entra_standin.expire_tokens()
    assert await entra_cloud_store.get("contoso.test") == CONTOSO
    assert entra_standin.request_counts()["token"] == 2


async def test_wrong_secret(entra_standin: EntraStandIn) -> None:
    store = CloudKerberosDomainStore(entra_app(entra_standin, client_secret="nope"), base_url=entra_standin.url)
    try:
        with pytest.raises(EntraAuthError, match="AADSTS7000215"):
            await store.get("contoso.test")
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, EntraForbidden), (500, EntraUnavailable), (503, EntraUnavailable), (400, EntraError)],
)
async def test_store_failures_are_mapped(
    entra_cloud_store: CloudKerberosDomainStore, entra_standin: EntraStandIn, status: int, error: type[EntraError]
) -> None:
    entra_standin.fail_next("store", status)
    with pytest.raises(error, match=str(status)):
        await entra_cloud_store.put(CONTOSO)
    assert entra_standin.kerberos_domain("contoso.test") is None


async def test_store_throttling_and_timeouts(
    entra_cloud_store: CloudKerberosDomainStore, entra_standin: EntraStandIn
) -> None:
    entra_standin.fail_next("store", 429, retry_after=0.1)
    await entra_cloud_store.put(CONTOSO)  # short Retry-After: waited out
    entra_standin.fail_next("store", 429, retry_after=10)
    with pytest.raises(EntraThrottled) as err:
        await entra_cloud_store.get("contoso.test")
    assert err.value.retry_after_seconds == 10
    entra_standin.fail_next("store", None, delay=2.0)
    with pytest.raises(EntraUnavailable, match="in time"):
        await entra_cloud_store.get("contoso.test")


async def test_stand_in_rejects_incomplete_objects_and_bad_tokens(entra_standin: EntraStandIn) -> None:
    tls = ssl.create_default_context(cafile=str(entra_standin.ca_file))
    async with httpx.AsyncClient(verify=tls, timeout=5) as client:
        url = f"{entra_standin.store_url}/contoso.test"
        assert (await client.get(url)).status_code == 401
        bad = await client.get(url, headers={"Authorization": "Bearer not.a.jwt"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "InvalidAuthenticationToken"
        graph = await client.get(f"{entra_standin.url}/v1.0/organization")
        assert graph.status_code == 401 and graph.json()["error"]["message"] == "Access token is empty."
    with pytest.raises(ValueError, match="missing properties"):
        entra_standin.put_kerberos_domain({"domainDnsName": "contoso.test"})


async def test_patch_changes_one_property(entra_standin: EntraStandIn) -> None:
    entra_standin.put_kerberos_domain(CONTOSO)
    store = CloudKerberosDomainStore(entra_app(entra_standin), base_url=entra_standin.url)
    try:
        token = await store.tokens.token()
    finally:
        await store.close()
    tls = ssl.create_default_context(cafile=str(entra_standin.ca_file))
    async with httpx.AsyncClient(verify=tls, timeout=5, headers={"Authorization": f"Bearer {token}"}) as client:
        url = f"{entra_standin.store_url}/contoso.test"
        patched = await client.patch(url, json={"trustDisplay": TRUST_DISPLAY_TYPE, "topLevelNames": ["windows.net"]})
        assert patched.status_code == 200 and patched.json()["keyVersion"] == CONTOSO.key_version
        assert (await client.patch(url, json={"domainDnsName": "x.test"})).status_code == 400
        assert (await client.patch(f"{entra_standin.store_url}/nope.test", json={})).status_code == 404
    assert [e["activityDisplayName"] for e in entra_standin.state.audit_events] == ["Update kerberos domain"]


async def test_admin_endpoints_for_out_of_process_demos(
    entra_graph: GraphEntraDirectory, entra_standin: EntraStandIn
) -> None:
    tls = ssl.create_default_context(cafile=str(entra_standin.ca_file))
    admin = {ADMIN_HEADER: entra_standin.admin_key}
    async with httpx.AsyncClient(base_url=entra_standin.url, verify=tls, timeout=5) as client:
        assert (await client.post("/_standin/expire-tokens")).status_code == 403  # the key is required
        await entra_graph.tenant()
        response = await client.post(
            "/_standin/faults", headers=admin, json={"route": "graph", "status": 429, "retry_after": 45}
        )
        assert response.status_code == 200
        with pytest.raises(EntraThrottled) as err:
            await entra_graph.kerberos_domain_events("contoso.test")
        assert err.value.retry_after_seconds == 45
        assert (await client.post("/_standin/expire-tokens", headers=admin)).status_code == 200
        assert await entra_graph.kerberos_domain_events("contoso.test", since=datetime.now(UTC) - timedelta(1)) == []
        counts = (await client.get("/_standin/counts", headers=admin)).json()
        assert counts["token"] == 2 and counts["graph"] == 4 and counts["tokens_issued"] == 2
        bad = await client.post("/_standin/faults", headers=admin, json={"route": "nowhere", "status": 500})
        assert bad.status_code == 400
        assert (await client.post("/_standin/reset", headers=admin, json={})).status_code == 200
        assert (await client.get("/_standin/counts", headers=admin)).json()["graph"] == 0
