"""Ports: what the services need from the outside world.

Adapters (``bot.adapters``) implement these Protocols without inheriting from them; tests use
in-memory fakes that implement the same Protocols. Every method is async: adapters whose
libraries block (ldap3, msal) run them in a worker thread so one slow DC never stalls the bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.approvals import AuditEntry, ChangeRequest, Freeze, RequestChange
from bot.domain.model import AuditEvent, KerberosServerReport, OnPremState, TenantInfo


class ActiveDirectory(Protocol):
    """One AD domain, reached over LDAP(S) through a pool of its DCs."""

    @property
    def domain_dns_name(self) -> str: ...

    async def read_kerberos_objects(self) -> OnPremState:
        """The Entra Kerberos server's objects: computer, krbtgt, key metadata, SCP, TDO."""
        ...

    async def read_key_versions_per_dc(self) -> dict[str, int | None]:
        """KeyVersion as each configured DC sees it (None where a DC did not answer)."""
        ...


class EntraDirectory(Protocol):
    """Microsoft Entra ID through its public API (Microsoft Graph)."""

    async def tenant(self) -> TenantInfo: ...

    async def kerberos_domain_events(
        self, domain_dns_name: str, *, since: datetime | None = None, limit: int = 20
    ) -> list[AuditEvent]:
        """Audit events of category ``KerberosDomain`` for this domain, newest first."""
        ...


@dataclass(frozen=True)
class SetServerOptions:
    """The switches of ``Set-AzureADKerberosServer``."""

    setup_cloud_trust: bool = False
    top_level_names: Sequence[str] | None = None
    rotate_server_key: bool = False
    force: bool = False


class KerberosModule(Protocol):
    """The operations of Microsoft's AzureADHybridAuthenticationManagement module.

    Production runs the real module on a Windows management host; tests and the demo use the
    emulator, which changes the test directory for real and keeps the cloud half in the Entra
    stand-in.
    """

    async def get_server(self, domain_dns_name: str) -> KerberosServerReport:
        """``Get-AzureAdKerberosServer -Domain <domain>``."""
        ...

    async def set_server(self, domain_dns_name: str, options: SetServerOptions) -> KerberosServerReport:
        """``Set-AzureADKerberosServer`` (create, -SetupCloudTrust, -RotateServerKey, -Force)."""
        ...

    async def remove_trusted_domain_object(self, domain_dns_name: str) -> None:
        """``Remove-AzureADKerberosServerTrustedDomainObject``: the TDO only."""
        ...

    async def remove_server(self, domain_dns_name: str) -> None:
        """``Remove-AzureAdKerberosServer``: TDO, krbtgt account, computer and cloud object."""
        ...


@dataclass(frozen=True)
class DeferredCommand:
    """A command already acknowledged whose follow-up work (reads, rendering, the reply) a worker does."""

    text: str
    user_id: str
    channel_id: str
    reply_to: str  # where the replies go (Slack: the response URL)
    request_id: str  # the log correlation id of the acknowledging process
    queued_at: datetime
    team_id: str = ""
    app_id: str = ""
    mac: str = ""  # bot.domain.integrity: the bot queued it (a queue entry is run as its user)


class CommandQueue(Protocol):
    """Hands acknowledged commands from the process that acknowledges to the processes that work."""

    async def put(self, command: DeferredCommand) -> None: ...

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        """Up to ``count`` commands, each given to one consumer only (at most once: a command a
        crashed worker took is not redone, as a crashed in-process reply was never redone)."""
        ...


class ReplayGuard(Protocol):
    """Remembers every Slack request's (timestamp, signature) for longer than Slack's 5-minute window."""

    async def first_time(self, timestamp: str, signature: str) -> bool:
        """True the first time this pair is seen; False for a replay."""
        ...


class Leadership(Protocol):
    """One holder at a time across every replica (the scheduler runs where this says so); the lead
    lapses when its holder stops renewing it."""

    async def hold(self, holder: str, lease: timedelta) -> bool:
        """Take the lead if nobody holds it, or keep it for ``lease`` more if ``holder`` does; else False."""
        ...

    async def release(self, holder: str) -> None:
        """Give the lead up now (only if ``holder`` has it), so that another takes over at once."""
        ...


class Freezes(Protocol):
    """The freezes of the domains, shared by every replica; a freeze ends by itself at its ``until``."""

    async def put(self, freeze: Freeze) -> None: ...

    async def get(self, domain: str, at: datetime) -> Freeze | None:
        """The domain's freeze still in force at ``at``, if any."""
        ...

    async def remove(self, domain: str) -> bool: ...


class ChatOrigins(Protocol):
    """Where a request the bot files itself comes from (``"<team>/<app>/<channel>"``): clicks on its card
    count only from there, as for a request typed in that channel."""

    async def origin_of(self, channel: str) -> str: ...


class SchedulerMemory(Protocol):
    """What the scheduler must not forget when the lead moves or the bot restarts: what it filed and reported."""

    async def recall(self, name: str) -> str | None: ...

    async def remember(self, name: str, value: str) -> None: ...


class RateLimiter(Protocol):
    """Token buckets per key (a user's new requests, a user's clicks), shared by every replica."""

    async def take(self, bucket: str, *, capacity: int, per_second: float, at: datetime) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there is (nothing taken)."""
        ...


class NoticePreferences(Protocol):
    """What each person wants to hear directly from the bot (their direct messages about their requests)."""

    async def muted(self, user: str) -> bool:
        """The user turned the direct messages about their requests off."""
        ...

    async def set_muted(self, user: str, muted: bool) -> None: ...

    async def remember_home(self, user: str) -> None:
        """The user opened the bot's home page: it is redrawn for them when something changes."""
        ...

    async def home_users(self) -> frozenset[str]: ...


class RequestWatcher(Protocol):
    """Hears every change of a request's state (its requester's direct messages, in Slack); a watcher that
    fails changes nothing about the request."""

    async def request_changed(self, request: ChangeRequest, change: RequestChange) -> None: ...


class AuditTrail(Protocol):
    """The append-only audit trail, read in order, and where each reader (a SIEM sink) got to."""

    async def after(self, cursor: str | None, count: int) -> list[AuditEntry]:
        """Up to ``count`` entries after ``cursor`` (an entry's id; None: from the start), oldest first."""
        ...

    async def between(self, since: datetime, until: datetime) -> list[AuditEntry]:
        """The entries whose time is in [since, until), oldest first."""
        ...

    async def cursor(self, reader: str) -> str | None: ...

    async def save_cursor(self, reader: str, cursor: str) -> None: ...


class AuditSink(Protocol):
    """Somewhere the audit trail is forwarded to (a SIEM); ``send`` returns only once the sink has it."""

    @property
    def name(self) -> str: ...

    async def send(self, entries: Sequence[AuditEntry]) -> None:
        """Deliver ``entries`` in order; raises ``KerberosBotError`` when the sink did not take them all."""
        ...

    async def close(self) -> None: ...
