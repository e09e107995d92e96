"""/kerberos status end to end: signed HTTP -> bot -> real Samba DCs, Entra stand-in -> response URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.samba_dc import DEFAULT_DOMAINS, samba
from kerberos_sandbox.sandbox import Sandbox, sandbox, seed

from bot.adapters.kerberos_module.emulator.module import KerberosModuleEmulator
from bot.domain.ports import SetServerOptions
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox"))) as running:
        yield running


@pytest.fixture
async def seeded(box: Sandbox) -> AsyncIterator[Sandbox]:
    await seed(box.domains, box.components)
    yield box
    await seed(box.domains, box.components)  # leave the directories as the next test expects them


def text_of(messages: list[dict]) -> str:  # type: ignore[type-arg]
    return json.dumps(messages, ensure_ascii=False)


async def test_status_of_all_domains_reads_both_directories(seeded: Sandbox) -> None:
    ack, replies = await seeded.command("status")
    assert ack.status == 200
    text = text_of(replies)
    assert "Kerberos status: contoso.test" in text and "Kerberos status: fabrikam.test" in text
    # contoso has the cloud trust, fabrikam is FIDO only
    assert "Microsoft.AzureAD.Kdc.Service.TrustDisplay (windows.net)" in text
    assert "FIDO sign-in works" in text
    assert "DC=contoso,DC=test" in text and "DC=fabrikam,DC=test" in text


async def test_healthy_domain_shows_module_fields_from_the_directory(seeded: Sandbox) -> None:
    _, replies = await seeded.command("status contoso.test")
    text = text_of(replies)
    report = await seeded.components.module.get_server("contoso.test")
    assert report.key_version is not None and report.key_version == report.cloud_key_version
    assert f"*KeyVersion*\\n{report.key_version}" in text
    assert f"*CloudKeyVersion*\\n{report.key_version}" in text
    assert "krbtgt_" in text
    assert "Healthy" in text


async def test_key_reset_outside_the_module_shows_drift(seeded: Sandbox) -> None:
    module = seeded.components.module
    assert isinstance(module, KerberosModuleEmulator)
    await module.domain("contoso.test").on_prem.rotate_key()  # AD only: what a manual password reset does
    _, replies = await seeded.command("status contoso.test")
    text = text_of(replies)
    assert "Broken" in text
    assert "Key versions differ" in text
    # the module's forced rotation writes both sides and heals it
    await module.set_server("contoso.test", SetServerOptions(rotate_server_key=True, force=True))
    _, replies = await seeded.command("status contoso.test")
    assert "Key versions differ" not in text_of(replies)


async def test_domain_without_server_is_not_set_up(seeded: Sandbox) -> None:
    await seeded.components.module.remove_server("fabrikam.test")
    _, replies = await seeded.command("status fabrikam.test")
    text = text_of(replies)
    assert "Not set up" in text
    assert "No Microsoft Entra Kerberos server in fabrikam.test" in text


async def test_tdo_removed_keeps_the_service_account(seeded: Sandbox) -> None:
    await seeded.components.module.remove_trusted_domain_object("contoso.test")
    _, replies = await seeded.command("status contoso.test")
    text = text_of(replies)
    assert "No trusted domain object" in text
    assert "krbtgt_" in text  # the service account is still there


def test_sandbox_domains_are_separate_dcs_and_contoso_has_two() -> None:
    assert {d.address for d in DEFAULT_DOMAINS} == {"127.0.0.1", "127.0.0.2"}
    assert [d.replica for d in DEFAULT_DOMAINS] == ["127.0.0.3", None]


async def test_entra_throttling_shows_in_the_reply_with_the_wait(seeded: Sandbox) -> None:
    seeded.entra.fail_next("graph", 429, retry_after=45)
    _, replies = await seeded.command("status contoso.test")
    text = text_of(replies)
    assert "Could not read Entra ID" in text and "retry in 45 s" in text
    assert "krbtgt_" in text  # AD and the module still answered
    assert "Traceback" not in text


async def test_a_domain_whose_dcs_are_down_is_reported_and_the_others_still_shown(seeded: Sandbox) -> None:
    fabrikam = seeded.domains[1]
    await samba("down", fabrikam)
    try:
        _, replies = await seeded.command("status")
        text = text_of(replies)
        assert "No domain controller of fabrikam.test answered" in text
        assert "Kerberos status: contoso.test" in text and "Healthy" in text
    finally:
        await samba("up", fabrikam)


async def test_metrics_expose_the_named_series_after_a_command(seeded: Sandbox) -> None:
    await seeded.command("status contoso.test")
    await seeded.command("bogus")
    async with seeded.session.get(seeded.health_url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert 'kerberos_bot_commands_total{outcome="ok",subcommand="status"}' in text
    assert 'kerberos_bot_commands_total{outcome="refused",subcommand="unknown"}' in text
    assert 'kerberos_bot_ack_seconds_bucket{kind="command"' in text
    assert 'kerberos_bot_source_seconds_count{source="Active Directory"}' in text
    assert 'kerberos_bot_source_seconds_count{source="Entra ID"}' in text


async def test_readyz_names_the_dependency_that_is_down(seeded: Sandbox) -> None:
    async with seeded.session.get(seeded.health_url + "/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "ready"
    await samba("down", seeded.domains[1])
    try:
        async with seeded.session.get(seeded.health_url + "/readyz") as resp:
            body = await resp.json()
        assert resp.status == 503
        assert body["failed"] == ["ldap:fabrikam.test"]  # the name only: the reason goes to the log
        assert "domain controller" not in json.dumps(body)
    finally:
        await samba("up", seeded.domains[1])
    async with seeded.session.get(seeded.health_url + "/healthz") as resp:
        assert resp.status == 200


async def test_the_slack_listener_serves_nothing_but_slacks_endpoint(seeded: Sandbox) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        async with seeded.session.get(seeded.base_url + path) as resp:
            assert resp.status in (404, 405), path


async def test_a_replayed_slack_request_is_refused(seeded: Sandbox) -> None:
    from kerberos_sandbox.slack_requests import send_slash_command, signed_headers, slash_command_form

    form = slash_command_form("gpo", response_url=seeded.slack.new_response_url())
    headers = signed_headers(seeded.signing_secret, form)
    first = await send_slash_command(seeded.session, seeded.endpoint, seeded.signing_secret, form, headers=headers)
    again = await send_slash_command(seeded.session, seeded.endpoint, seeded.signing_secret, form, headers=headers)
    assert first.status == 200 and again.status == 401 and "replayed" in again.body


@pytest.mark.parametrize(
    ("status", "why"), [(429, "throttled the request (429)"), (403, "Hybrid Identity Administrator role")]
)
async def test_when_entras_kerberos_store_fails_the_ad_fields_stay_and_the_cloud_fields_say_why(
    seeded: Sandbox, status: int, why: str
) -> None:
    seeded.entra.fail_next("store", status, count=3)
    _, replies = await seeded.command("status contoso.test")
    seeded.entra.clear_faults()
    text = text_of(replies)
    assert "krbtgt_AzureAD" in text and "KeyVersion" in text  # what AD said is shown
    assert "CloudKeyVersion*\\n_unavailable_" in text
    assert "The Cloud* fields could not be read" in text and why in text
    assert "AuditLog.Read.All" not in text  # a 403 of the store is not a Graph permission


async def test_the_gpo_value_names_the_clouds_login_host_not_the_stand_in(seeded: Sandbox) -> None:
    ack, _ = await seeded.command("gpo")
    assert f"<https login.microsoftonline.com:443:{seeded.entra.tenant_id}/kerberos />" in ack.body
    assert "127.0.0.1" not in ack.body
