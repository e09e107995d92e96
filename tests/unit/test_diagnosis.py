from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Literal

from bot.domain.checks import CHECKS, Facts, key_age
from bot.domain.diagnosis import diagnose
from bot.domain.findings import Diagnosis, Finding, Health, Observations, RotationPolicy, Severity, SourceFailure
from bot.domain.model import AuditEvent, CloudKerberosDomain, KerberosServerReport, KeyMetadata, OnPremState
from tests.support.fakes import NOW, audit_event, cloud_of, on_prem_state

POLICY = RotationPolicy(key_max_age_days=180, rotation_min_interval=timedelta(hours=24))


def observe(
    state: OnPremState,
    cloud: CloudKerberosDomain | Literal["same"] | None = "same",
    events: Sequence[AuditEvent] | None = None,
    failures: Sequence[SourceFailure] = (),
) -> Observations:
    domain = cloud_of(state) if cloud == "same" else cloud
    report = KerberosServerReport.combine(state.server, state.domain_dns_name, domain)
    return Observations(state.domain_dns_name, report, state, events, tuple(failures))


def codes(diagnosis: Diagnosis) -> set[str]:
    return {f.code for f in diagnosis.findings}


def test_diagnose_is_its_checks_over_one_set_of_facts() -> None:
    obs = observe(on_prem_state(key_updated_on=NOW - timedelta(days=200)))
    only_age = diagnose(obs, NOW, POLICY, checks=(key_age,))
    assert codes(only_age) == {"key_too_old"} and only_age.health == Health.DEGRADED

    def always(facts: Facts) -> list[Finding]:  # a new check is one function
        return [Finding("extra", Severity.INFO, f"checked {facts.domain}")]

    assert "extra" in codes(diagnose(obs, NOW, POLICY, checks=(*CHECKS, always)))
    assert all(isinstance(check(Facts.of(obs, NOW, POLICY)), list) for check in CHECKS)


def test_healthy_when_both_sides_exist_and_agree() -> None:
    d = diagnose(observe(on_prem_state()), NOW, POLICY)
    assert d.health == Health.HEALTHY
    assert "healthy" in codes(d)
    assert "rotation_allowed" in codes(d)
    assert d.rotation.allowed_now


def test_key_version_drift_is_broken_and_says_what_to_do() -> None:
    state = on_prem_state()
    cloud = replace(cloud_of(state), key_version=50000)  # type: ignore[type-var]
    d = diagnose(observe(state, cloud), NOW, POLICY)
    assert d.health == Health.BROKEN
    drift = next(f for f in d.findings if f.code == "key_version_drift")
    assert drift.severity == Severity.CRITICAL
    assert "53325" in drift.summary and "50000" in drift.summary
    assert drift.advice and "rotate" in drift.advice.lower()


def test_key_time_drift_with_same_version_is_a_warning() -> None:
    state = on_prem_state()
    cloud = replace(cloud_of(state), key_updated_on=NOW - timedelta(days=39))  # type: ignore[type-var]
    d = diagnose(observe(state, cloud), NOW, POLICY)
    assert d.health == Health.DEGRADED
    assert "key_time_drift" in codes(d)


def test_no_server_anywhere_is_absent() -> None:
    state = on_prem_state(with_server=False, with_tdo=False)
    d = diagnose(observe(state, None), NOW, POLICY)
    assert d.health == Health.ABSENT
    assert "no_server" in codes(d)
    assert not d.rotation.allowed_now


def test_server_without_tdo_says_fido_works_but_trust_flow_does_not() -> None:
    state = on_prem_state(with_tdo=False)
    d = diagnose(observe(state), NOW, POLICY)
    assert d.health == Health.DEGRADED
    finding = next(f for f in d.findings if f.code == "no_tdo")
    assert "FIDO sign-in works" in finding.summary
    assert "does not" in finding.summary


def test_tdo_on_prem_but_no_cloud_trust() -> None:
    state = on_prem_state()
    cloud = replace(cloud_of(state), trust_display=None, top_level_names=())  # type: ignore[type-var]
    d = diagnose(observe(state, cloud), NOW, POLICY)
    assert "tdo_missing_in_cloud" in codes(d)


def test_cloud_object_missing_is_broken() -> None:
    d = diagnose(observe(on_prem_state(), None), NOW, POLICY)
    assert d.health == Health.BROKEN
    assert "cloud_missing" in codes(d)


def test_cloud_without_ad_objects_is_broken() -> None:
    full = on_prem_state()
    empty = on_prem_state(with_server=False, with_tdo=False)
    report = KerberosServerReport.combine(None, empty.domain_dns_name, cloud_of(full))
    d = diagnose(Observations(empty.domain_dns_name, report, empty, None), NOW, POLICY)
    assert d.health == Health.BROKEN
    assert "on_prem_missing" in codes(d)


def test_id_mismatch_is_broken() -> None:
    state = on_prem_state()
    cloud = replace(cloud_of(state), id=99)  # type: ignore[type-var]
    assert "id_mismatch" in codes(diagnose(observe(state, cloud), NOW, POLICY))


def test_key_older_than_policy_warns_with_age_in_days() -> None:
    state = on_prem_state(key_updated_on=NOW - timedelta(days=200))
    d = diagnose(observe(state), NOW, POLICY)
    assert d.health == Health.DEGRADED
    old = next(f for f in d.findings if f.code == "key_too_old")
    assert "200 days" in old.summary and "180" in old.summary


def test_recent_rotation_allows_only_forced_rotation_until_24h_passed() -> None:
    changed = NOW - timedelta(hours=3)
    d = diagnose(observe(on_prem_state(key_updated_on=changed)), NOW, POLICY)
    assert not d.rotation.allowed_now
    assert d.rotation.allowed_from == changed + timedelta(hours=24)
    forced = next(f for f in d.findings if f.code == "rotation_forced_only")
    assert "--force" in forced.summary
    assert d.health == Health.HEALTHY  # information, not a problem


def test_source_failure_is_reported_and_health_unknown() -> None:
    state = on_prem_state()
    obs = replace(observe(state), failures=(SourceFailure("Entra ID", "throttled, retry in 30 s"),))
    d = diagnose(obs, NOW, POLICY)
    assert d.health == Health.UNKNOWN
    assert any("Entra ID" in f.summary and "30 s" in f.summary for f in d.findings)


def test_audit_event_is_cross_checked_against_key_updated_on() -> None:
    changed = NOW - timedelta(days=2)
    state = on_prem_state(key_updated_on=changed)
    matching = diagnose(
        observe(state, events=[audit_event("contoso.test", changed + timedelta(seconds=2))]), NOW, POLICY
    )
    assert "audit_latest" in codes(matching)
    assert "key_changed_outside_module" not in codes(matching)

    stale = diagnose(observe(state, events=[audit_event("contoso.test", changed - timedelta(days=5))]), NOW, POLICY)
    assert "key_changed_outside_module" in codes(stale)
    assert stale.health == Health.DEGRADED


def test_key_metadata_is_what_the_report_shows() -> None:
    state = on_prem_state(key_version=212621)
    report = KerberosServerReport.combine(state.server, "contoso.test", cloud_of(state))
    fields = dict(report.fields())
    assert fields["KeyVersion"] == 212621 and fields["CloudKeyVersion"] == 212621
    assert fields["DisplayName"] == "krbtgt_25614"
    assert str(fields["CloudTrustDisplay"]).startswith("Microsoft.AzureAD.Kdc.Service.TrustDisplay")
    assert isinstance(state.server.key, KeyMetadata)  # type: ignore[union-attr]


def test_empty_report_prints_every_field_empty_like_the_module() -> None:
    fields = KerberosServerReport().fields()
    assert [n for n, _ in fields] == [
        "ID",
        "UserAccount",
        "ComputerAccount",
        "DisplayName",
        "DomainDnsName",
        "KeyVersion",
        "KeyUpdatedOn",
        "KeyUpdatedFrom",
        "CloudDisplayName",
        "CloudDomainDnsName",
        "CloudId",
        "CloudKeyVersion",
        "CloudKeyUpdatedOn",
        "CloudTrustDisplay",
    ]
    assert all(v is None for _, v in fields)


def _with_trust_keys_changed(state: OnPremState, when: datetime) -> OnPremState:
    assert state.trusted_domain is not None
    return replace(state, trusted_domain=replace(state.trusted_domain, keys_updated_on=when))


def test_trust_keys_changed_with_the_service_account_are_fine() -> None:
    state = on_prem_state()  # the fake's TDO got its keys with the service account's key
    d = diagnose(observe(state), NOW, POLICY)
    finding = next(f for f in d.findings if f.code == "trust_keys_age")
    assert finding.severity == Severity.OK and "40 days ago" in finding.summary
    assert d.health == Health.HEALTHY


def test_trust_keys_left_behind_by_a_rotation_are_a_finding_with_its_fix() -> None:
    state = on_prem_state(key_updated_on=NOW - timedelta(days=2))
    state = _with_trust_keys_changed(state, NOW - timedelta(days=90))
    d = diagnose(observe(state), NOW, POLICY)
    behind = next(f for f in d.findings if f.code == "trust_keys_behind")
    assert behind.severity == Severity.WARNING and "90 days ago" in behind.summary
    assert behind.advice is not None and "-SetupCloudTrust" in behind.advice
    assert d.health == Health.DEGRADED


def test_trust_keys_older_than_the_policy_are_a_finding() -> None:
    state = _with_trust_keys_changed(on_prem_state(key_updated_on=NOW - timedelta(days=200)), NOW - timedelta(days=200))
    too_old = next(f for f in diagnose(observe(state), NOW, POLICY).findings if f.code == "trust_keys_too_old")
    assert "180 days" in too_old.summary
