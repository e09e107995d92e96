"""What an Entra Kerberos server is, on-premises and in the cloud.

Field names follow ``Get-AzureAdKerberosServer``'s output so operators recognise them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

KERBEROS_REALM = "KERBEROS.MICROSOFTONLINE.COM"
SCP_CN = "900274c4-b7d2-43c8-90ee-00a9f650e335"
TRUST_DISPLAY_TYPE = "Microsoft.AzureAD.Kdc.Service.TrustDisplay"
DEFAULT_TOP_LEVEL_NAMES: tuple[str, ...] = ("windows.net",)


def dns_name(name: str) -> str:
    """A DNS name as the bot compares and stores it: no surrounding space, lower case, no final dot."""
    return name.strip().lower().rstrip(".")


@dataclass(frozen=True)
class KeyMetadata:
    """Replication metadata of ``unicodePwd`` on the Entra krbtgt account.

    ``version`` is the originating USN of the last key change (what the module calls
    KeyVersion: it grows by replication metadata, not by one); ``updated_on`` the originating
    time; ``updated_from`` the DC that made the change (DNS name, or its invocation id when the
    DC is unknown).
    """

    version: int
    updated_on: datetime
    updated_from: str | None
    kvno: int | None = None  # msDS-KeyVersionNumber: the small per-account counter


@dataclass(frozen=True)
class TrustedDomainObject:
    """The inbound trust to ``KERBEROS.MICROSOFTONLINE.COM`` under ``CN=System``."""

    dn: str
    partner: str
    direction: int  # 1 inbound, 2 outbound, 3 both
    trust_type: int
    attributes: int
    created: datetime | None = None
    top_level_names: tuple[str, ...] = ()
    # last change of trustAuthIncoming/trustAuthOutgoing (replication metadata): the trust keys' age
    keys_updated_on: datetime | None = None
    # (metadata version, originating USN) of that change: moves on every change, even within a second
    keys_change: tuple[int, int] | None = None


@dataclass(frozen=True)
class ServiceConnectionPoint:
    dn: str
    keywords: tuple[str, ...] = ()

    def keyword(self, name: str) -> str | None:
        prefix = f"{name.lower()}="
        for kw in self.keywords:
            if kw.lower().startswith(prefix):
                return kw[len(prefix) :]
        return None


@dataclass(frozen=True)
class OnPremKerberosServer:
    """The AD half: the AzureADKerberos computer and the krbtgt account it links to."""

    computer_dn: str
    krbtgt_dn: str | None  # None when msDS-KrbTgtLink is missing or dangling
    server_id: int | None  # msDS-SecondaryKrbTgtNumber
    display_name: str | None  # sAMAccountName of the krbtgt account, krbtgt_<ID>
    key: KeyMetadata | None


@dataclass(frozen=True)
class OnPremState:
    """Everything the AD adapter reads for one domain, in one go."""

    domain_dns_name: str
    server: OnPremKerberosServer | None
    trusted_domain: TrustedDomainObject | None
    service_connection_point: ServiceConnectionPoint | None
    read_from: str  # the DC that answered
    ldap_operations: int = 0  # how many LDAP operations the read took (bench, logs)


def world_of(state: OnPremState) -> str:
    """The state of a domain's Kerberos objects a change is approved on, as one canonical line: whether the
    server and the trusted domain object exist, the key's version and time, the trust keys' last change.
    Every change the module makes moves it; a request replayed or re-queued against a world that moved on
    no longer matches it."""
    server, tdo = state.server, state.trusted_domain
    key = server.key if server else None
    parts = [
        f"server={'yes' if server else 'no'}",
        f"key={key.version}@{key.updated_on.isoformat()}" if key else "key=none",
        f"tdo={'yes' if tdo else 'no'}",
        f"tdo_keys={tdo.keys_change[0]}.{tdo.keys_change[1]}" if tdo and tdo.keys_change else "tdo_keys=none",
    ]
    return ";".join(parts)


@dataclass(frozen=True)
class CloudKerberosDomain:
    """Entra's KerberosDomain object (no public API; reached through the Kerberos module)."""

    id: int
    display_name: str
    domain_dns_name: str
    key_version: int
    key_updated_on: datetime
    trust_display: str | None = None  # TRUST_DISPLAY_TYPE once -SetupCloudTrust ran
    top_level_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class KerberosServerReport:
    """Exactly what ``Get-AzureAdKerberosServer`` prints; every field may be empty."""

    id: int | None = None
    user_account: str | None = None
    computer_account: str | None = None
    display_name: str | None = None
    domain_dns_name: str | None = None
    key_version: int | None = None
    key_updated_on: datetime | None = None
    key_updated_from: str | None = None
    cloud_display_name: str | None = None
    cloud_domain_dns_name: str | None = None
    cloud_id: int | None = None
    cloud_key_version: int | None = None
    cloud_key_updated_on: datetime | None = None
    cloud_trust_display: str | None = None
    cloud_top_level_names: tuple[str, ...] = ()

    @property
    def has_on_prem(self) -> bool:
        return self.id is not None or self.computer_account is not None

    @property
    def has_cloud(self) -> bool:
        return self.cloud_id is not None

    @classmethod
    def combine(
        cls, on_prem: OnPremKerberosServer | None, domain_dns_name: str, cloud: CloudKerberosDomain | None
    ) -> KerberosServerReport:
        key = on_prem.key if on_prem else None
        return cls(
            id=on_prem.server_id if on_prem else None,
            user_account=on_prem.krbtgt_dn if on_prem else None,
            computer_account=on_prem.computer_dn if on_prem else None,
            display_name=on_prem.display_name if on_prem else None,
            domain_dns_name=domain_dns_name if on_prem else None,
            key_version=key.version if key else None,
            key_updated_on=key.updated_on if key else None,
            key_updated_from=key.updated_from if key else None,
            cloud_display_name=cloud.display_name if cloud else None,
            cloud_domain_dns_name=cloud.domain_dns_name if cloud else None,
            cloud_id=cloud.id if cloud else None,
            cloud_key_version=cloud.key_version if cloud else None,
            cloud_key_updated_on=cloud.key_updated_on if cloud else None,
            cloud_trust_display=cloud.trust_display if cloud else None,
            cloud_top_level_names=cloud.top_level_names if cloud else (),
        )

    def on_prem_fields(self) -> list[tuple[str, object]]:
        """The module's AD fields, in its order, as values (the views format them)."""
        return [
            ("ID", self.id),
            ("UserAccount", self.user_account),
            ("ComputerAccount", self.computer_account),
            ("DisplayName", self.display_name),
            ("DomainDnsName", self.domain_dns_name),
            ("KeyVersion", self.key_version),
            ("KeyUpdatedOn", self.key_updated_on),
            ("KeyUpdatedFrom", self.key_updated_from),
        ]

    def cloud_fields(self) -> list[tuple[str, object]]:
        """The module's Cloud* fields (Entra's half), in its order, as values."""
        return [
            ("CloudDisplayName", self.cloud_display_name),
            ("CloudDomainDnsName", self.cloud_domain_dns_name),
            ("CloudId", self.cloud_id),
            ("CloudKeyVersion", self.cloud_key_version),
            ("CloudKeyUpdatedOn", self.cloud_key_updated_on),
            ("CloudTrustDisplay", self.cloud_trust_display),
        ]

    def fields(self) -> list[tuple[str, object]]:
        """Every field ``Get-AzureAdKerberosServer`` prints, in its order."""
        return self.on_prem_fields() + self.cloud_fields()


@dataclass(frozen=True)
class TenantInfo:
    id: str
    display_name: str
    verified_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuditEvent:
    """One Entra audit event of category ``KerberosDomain``."""

    id: str
    activity: str  # "Add kerberos domain", "Update kerberos domain", "Delete kerberos domain"
    at: datetime
    result: str
    initiated_by: str | None = None
    targets: tuple[str, ...] = field(default_factory=tuple)
