"""The checks of a diagnosis: small pure functions over the same ``Facts`` (what the adapters read, worked
out once), each returning its findings; ``CHECKS`` runs them in the order they are shown. A new check is
one function and one line in ``CHECKS``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.audit_trail import audit_findings, moment_text
from bot.domain.findings import Finding, Observations, RotationPolicy, RotationWindow, Severity, rotation_window
from bot.domain.model import KerberosServerReport, TrustedDomainObject

# The module stamps both sides from one operation; allow for clock skew between AD and Entra.
_SAME_MOMENT = timedelta(seconds=5)


def _days(age: timedelta) -> str:
    days = age.days
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(age.total_seconds() // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


# the trust keys change in the same module call as the service account's key, moments apart
_SAME_ROTATION = timedelta(hours=1)


def _trust_keys_finding(
    trust_keys_on: datetime, service_key_on: datetime | None, now: datetime, policy: RotationPolicy
) -> Finding:
    """The trusted domain object's keys (trustAuthIncoming/Outgoing), against the service account's key
    and the key-age policy: a rotation without -SetupCloudTrust leaves them behind."""
    age = now - trust_keys_on
    when = f"{moment_text(trust_keys_on)} ({_days(age)} ago)"
    if service_key_on is not None and trust_keys_on < service_key_on - _SAME_ROTATION:
        return Finding(
            "trust_keys_behind",
            Severity.WARNING,
            f"The trusted domain object's keys were last changed {when}, before the service account's key "
            f"({moment_text(service_key_on)}): a rotation without -SetupCloudTrust changed the service account only.",
            "Rotate again (kerberos-bot: rotate; in a domain with the cloud trust it passes -SetupCloudTrust with "
            "-RotateServerKey, as Microsoft's procedure does), so both get new keys.",
        )
    if age > timedelta(days=policy.key_max_age_days):
        return Finding(
            "trust_keys_too_old",
            Severity.WARNING,
            f"The trusted domain object's keys were last changed {when}, longer ago than the policy's "
            f"{policy.key_max_age_days} days.",
            "Rotate (kerberos-bot: rotate): the service account and the trust get new keys together.",
        )
    return Finding("trust_keys_age", Severity.OK, f"The trusted domain object's keys were last changed {when}.")


@dataclass(frozen=True)
class Facts:
    """What every check reads, worked out once from the observations."""

    obs: Observations
    now: datetime
    policy: RotationPolicy
    has_on_prem: bool
    has_cloud: bool
    on_prem_known: bool
    cloud_known: bool
    key_updated_on: datetime | None
    window: RotationWindow

    @property
    def domain(self) -> str:
        return self.obs.domain

    @property
    def report(self) -> KerberosServerReport | None:
        return self.obs.report

    @property
    def tdo(self) -> TrustedDomainObject | None:
        return self.obs.on_prem.trusted_domain if self.obs.on_prem else None

    @property
    def absent(self) -> bool:
        return self.on_prem_known and self.cloud_known and not self.has_on_prem and not self.has_cloud

    @classmethod
    def of(cls, obs: Observations, now: datetime, policy: RotationPolicy) -> Facts:
        report = obs.report
        server = obs.on_prem.server if obs.on_prem else None
        key_updated_on = report.key_updated_on if report else None
        if key_updated_on is None and server is not None and server.key is not None:
            key_updated_on = server.key.updated_on
        return cls(
            obs=obs,
            now=now,
            policy=policy,
            has_on_prem=server is not None or bool(report and report.has_on_prem),
            has_cloud=bool(report and report.has_cloud),
            on_prem_known=obs.on_prem is not None or report is not None,
            cloud_known=report is not None,
            key_updated_on=key_updated_on,
            window=rotation_window(key_updated_on, now, policy),
        )


Check = Callable[[Facts], list[Finding]]


def sources_read(f: Facts) -> list[Finding]:
    return [
        Finding(
            "source_unavailable",
            Severity.WARNING,
            f"Could not read {failure.source}: {failure.message}",
            "The fields from this source are missing below; the rest of the check still ran.",
        )
        for failure in f.obs.failures
    ]


def server_absent(f: Facts) -> list[Finding]:
    if not f.absent:
        return []
    findings = []
    if f.tdo is not None:
        findings.append(
            Finding(
                "orphan_tdo",
                Severity.WARNING,
                f"A trusted domain object for {f.tdo.partner} exists in {f.domain}, but no Entra Kerberos server.",
                "It is left over from a partial removal; remove it or set the server up again.",
            )
        )
    findings.append(
        Finding(
            "no_server",
            Severity.INFO,
            f"No Microsoft Entra Kerberos server in {f.domain}: neither FIDO sign-in nor the incoming "
            "trust-based flow for Azure SQL Managed Instance is set up.",
            "An admin creates it with Set-AzureADKerberosServer -SetupCloudTrust (kerberos-bot: setup).",
        )
    )
    return findings


def both_halves(f: Facts) -> list[Finding]:
    """The server has an AD half (computer, krbtgt account) and an Entra half; one without the other fails."""
    findings = []
    if f.report is not None and f.has_on_prem and f.cloud_known and not f.has_cloud:
        findings.append(
            Finding(
                "cloud_missing",
                Severity.CRITICAL,
                f"The AD objects exist in {f.domain}, but Entra ID has no Kerberos server object for it.",
                "Entra cannot issue tickets for this domain. Run setup again so the module registers it "
                "in Entra (it reuses the AD account).",
            )
        )
    if f.report is not None and f.has_cloud and not f.has_on_prem and f.obs.on_prem is not None:
        findings.append(
            Finding(
                "on_prem_missing",
                Severity.CRITICAL,
                f"Entra ID has a Kerberos server for {f.domain}, but its AD objects (AzureADKerberos computer and "
                "krbtgt account) are missing.",
                "Remove the Kerberos settings and set the server up again.",
            )
        )
    return findings


def krbtgt_link(f: Facts) -> list[Finding]:
    server = f.obs.on_prem.server if f.obs.on_prem else None
    if server is None or server.krbtgt_dn is not None:
        return []
    return [
        Finding(
            "krbtgt_link_broken",
            Severity.CRITICAL,
            f"The AzureADKerberos computer in {f.domain} has no valid msDS-KrbTgtLink to its krbtgt account.",
            "Remove the Kerberos settings and set the server up again.",
        )
    ]


def halves_agree(f: Facts) -> list[Finding]:
    """AD and Entra name the same server, domain and key."""
    report = f.report
    if report is None or not (f.has_on_prem and f.has_cloud):
        return []
    findings = []
    if report.id != report.cloud_id:
        findings.append(
            Finding(
                "id_mismatch",
                Severity.CRITICAL,
                f"The server ID differs: AD {report.id}, Entra {report.cloud_id}.",
                "Entra knows another krbtgt account than AD has; set the server up again.",
            )
        )
    if (report.domain_dns_name or "").lower() != (report.cloud_domain_dns_name or "").lower():
        findings.append(
            Finding(
                "dns_mismatch",
                Severity.CRITICAL,
                f"The domain names differ: AD {report.domain_dns_name}, Entra {report.cloud_domain_dns_name}.",
            )
        )
    if report.key_version != report.cloud_key_version:
        findings.append(
            Finding(
                "key_version_drift",
                Severity.CRITICAL,
                f"Key versions differ: AD has KeyVersion {report.key_version}, Entra has "
                f"CloudKeyVersion {report.cloud_key_version}. Kerberos tickets for cloud users fail "
                "until they match.",
                "Rotate the key with the module (kerberos-bot: rotate --force) so that AD and Entra are "
                "written together. Never reset the krbtgt_AzureAD password by hand.",
            )
        )
    elif (
        report.key_updated_on is not None
        and report.cloud_key_updated_on is not None
        and abs(report.key_updated_on - report.cloud_key_updated_on) > _SAME_MOMENT
    ):
        findings.append(
            Finding(
                "key_time_drift",
                Severity.WARNING,
                "Key versions match but KeyUpdatedOn and CloudKeyUpdatedOn differ "
                f"({moment_text(report.key_updated_on)} vs {moment_text(report.cloud_key_updated_on)}).",
                "Usually harmless; a rotation through the module realigns them.",
            )
        )
    return findings


def trusted_domain_object(f: Facts) -> list[Finding]:
    """The incoming trust-based flow needs the TDO in AD and the cloud trust in Entra, both inbound."""
    if not f.has_on_prem:
        return []
    tdo, d = f.tdo, f.domain
    trust_in_cloud = bool(f.report and f.report.cloud_trust_display)
    on_prem_read = f.obs.on_prem is not None
    findings = []
    if tdo is None and not trust_in_cloud and on_prem_read:
        findings.append(
            Finding(
                "no_tdo",
                Severity.WARNING,
                f"No trusted domain object for KERBEROS.MICROSOFTONLINE.COM in {d}: FIDO sign-in works, "
                "the incoming trust-based flow (Azure SQL Managed Instance) does not.",
                "Create it with Set-AzureADKerberosServer -SetupCloudTrust (kerberos-bot: setup). "
                "In a multi-domain forest the root domain comes first.",
            )
        )
    elif tdo is None and trust_in_cloud and on_prem_read:
        findings.append(
            Finding(
                "tdo_missing_on_prem",
                Severity.CRITICAL,
                f"Entra shows a cloud trust, but the trusted domain object is missing in {d}.",
                "Run setup with -SetupCloudTrust again to recreate it.",
            )
        )
    elif tdo is not None and f.report is not None and f.has_cloud and not trust_in_cloud:
        findings.append(
            Finding(
                "tdo_missing_in_cloud",
                Severity.WARNING,
                f"The trusted domain object exists in {d}, but Entra shows no cloud trust (CloudTrustDisplay "
                "is empty).",
                "Run setup with -SetupCloudTrust again so Entra records the trust.",
            )
        )
    elif tdo is not None and tdo.direction & 1 == 0:
        findings.append(
            Finding(
                "tdo_not_inbound",
                Severity.CRITICAL,
                f"The trusted domain object in {d} is not inbound (trustDirection {tdo.direction}).",
                "Remove it and create it again through the module.",
            )
        )
    if tdo is not None and tdo.top_level_names:
        findings.append(
            Finding(
                "tdo_present",
                Severity.OK,
                f"Cloud trust in place; top-level names: {', '.join(tdo.top_level_names)}.",
            )
        )
    return findings


def trust_keys(f: Facts) -> list[Finding]:
    tdo = f.tdo
    if not f.has_on_prem or tdo is None or tdo.keys_updated_on is None:
        return []
    return [_trust_keys_finding(tdo.keys_updated_on, f.key_updated_on, f.now, f.policy)]


def key_age(f: Facts) -> list[Finding]:
    age, policy = f.window.key_age, f.policy
    if age is None:
        return []
    if age > timedelta(days=policy.key_max_age_days):
        return [
            Finding(
                "key_too_old",
                Severity.WARNING,
                f"The key is {_days(age)} old, older than the policy's {policy.key_max_age_days} days.",
                "Rotate it (kerberos-bot: rotate) in a maintenance window, on the same cadence as the AD krbtgt "
                "account (and at once after a suspected compromise); rotate twice, a day apart, to retire the "
                "old key fully.",
            )
        ]
    return [Finding("key_age", Severity.OK, f"The key is {_days(age)} old (policy: {policy.key_max_age_days} days).")]


def rotation_allowed(f: Facts) -> list[Finding]:
    """The 24-hour rule: a rotation within the minimum interval of the last one needs --force."""
    if f.window.key_age is None:
        return []
    if f.window.allowed_now:
        return [Finding("rotation_allowed", Severity.OK, "A rotation is allowed now.")]
    return [
        Finding(
            "rotation_forced_only",
            Severity.INFO,
            f"The key was changed less than {_hours(f.policy.rotation_min_interval)} ago: until "
            f"{moment_text(f.window.allowed_from)} a rotation needs --force (propagation between KDCs takes hours).",
        )
    ]


def audit_log(f: Facts) -> list[Finding]:
    if f.obs.audit_events is None or not f.has_cloud:
        return []
    return audit_findings(f.obs.audit_events, f.key_updated_on, f.obs.audit_since)


# In the order they are shown. With no server at all only the first two apply.
CHECKS: tuple[Check, ...] = (
    sources_read,
    server_absent,
    both_halves,
    krbtgt_link,
    halves_agree,
    trusted_domain_object,
    trust_keys,
    key_age,
    rotation_allowed,
    audit_log,
)
_WHEN_ABSENT: tuple[Check, ...] = (sources_read, server_absent)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hours"
