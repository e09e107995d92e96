"""Use case: the status of the Entra Kerberos server in one or all configured domains."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from bot.domain.diagnosis import diagnose
from bot.domain.errors import KerberosBotError, UnknownDomainError
from bot.domain.findings import Diagnosis, Observations, RotationPolicy, SourceFailure
from bot.domain.model import AuditEvent, KerberosServerReport, OnPremState, dns_name
from bot.domain.ports import ActiveDirectory, EntraDirectory, KerberosModule, RateLimiter
from bot.observability.metrics import Metrics
from bot.services.buckets import within
from bot.services.single_flight import SingleFlight

log = logging.getLogger(__name__)
T = TypeVar("T")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DomainStatus:
    domain: str
    report: KerberosServerReport | None
    on_prem: OnPremState | None
    audit_events: tuple[AuditEvent, ...] | None
    diagnosis: Diagnosis
    checked_at: datetime
    cloud_unavailable: str | None = None  # the module's read failed: the report holds AD's fields only, and why
    per_dc: Mapping[str, int | None] | None = None  # --dcs: KeyVersion on each configured DC (None: no answer)


@dataclass(frozen=True)
class StatusSettings:
    policy: RotationPolicy = field(default_factory=RotationPolicy)
    audit_lookback: timedelta = timedelta(days=30)
    per_source_timeout: timedelta = timedelta(seconds=20)
    per_user_per_minute: int = 20  # each status calls the module on the tier-0 management host


READS_AT_ONCE = 10  # domains read at the same time by one status


class StatusService:
    """Reads AD, the Kerberos module and Entra for a domain concurrently and diagnoses the result."""

    def __init__(
        self,
        directories: Mapping[str, ActiveDirectory],
        module: KerberosModule,
        entra: EntraDirectory,
        settings: StatusSettings | None = None,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._limiter = limiter  # None: no shared store, no limit
        self._metrics = metrics or Metrics.create()
        self._directories = dict(directories)
        self._module = module
        self._entra = entra
        self._settings = settings or StatusSettings()
        self._clock = clock
        # Concurrent requests for the same domain share one read, so a burst never multiplies DC load.
        self._reads: SingleFlight[DomainStatus] = SingleFlight()

    @property
    def domains(self) -> list[str]:
        return list(self._directories)

    async def allow(self, user: str) -> None:
        """``user`` may ask for another status now (a token bucket per person); refused with when otherwise."""
        per_minute = self._settings.per_user_per_minute

        def refusal(wait: float) -> str:
            return (
                f"You asked for status faster than kerberos-bot allows ({per_minute} a minute: each one calls the "
                f"Kerberos module on the management host); nothing was read. Try again in {max(1, round(wait))} s."
            )

        bucket = f"status:{user}"
        await within(
            self._limiter, bucket, capacity=per_minute, per_second=per_minute / 60, at=self._clock(), refusal=refusal
        )

    def resolve(self, domain: str | None) -> list[str]:
        """The configured domains a request is about; an unknown name names the valid ones."""
        if domain is None:
            return self.domains
        wanted = dns_name(domain)
        if wanted not in self._directories:
            raise UnknownDomainError(domain, self.domains)
        return [wanted]

    async def status(self, domain: str | None = None, *, per_dc: bool = False) -> list[DomainStatus]:
        """``per_dc``: also the KeyVersion each configured DC holds (one read per DC, no failover). Every
        domain's reads run at once, ``READS_AT_ONCE`` domains at a time (a hundred domains must not open a
        hundred connections and module calls on the management host at once)."""
        names = self.resolve(domain)
        gate = asyncio.Semaphore(READS_AT_ONCE)

        async def one(name: str) -> DomainStatus:
            async with gate:
                return await self._reads.run((name, per_dc), partial(self._one, name, per_dc))

        return list(await asyncio.gather(*(one(name) for name in names)))

    async def _one(self, domain: str, per_dc: bool = False) -> DomainStatus:
        now = self._clock()
        since = now - self._settings.audit_lookback
        failures: list[SourceFailure] = []
        directory = self._directories[domain]

        async def per_dc_versions() -> dict[str, int | None] | None:
            if not per_dc:
                return None
            return await self._guard("each DC", failures, directory.read_key_versions_per_dc)

        on_prem, report, events, versions = await asyncio.gather(
            self._guard("Active Directory", failures, directory.read_kerberos_objects),
            self._guard("Kerberos module", failures, lambda: self._module.get_server(domain)),
            self._guard("Entra ID", failures, lambda: self._entra.kerberos_domain_events(domain, since=since)),
            per_dc_versions(),
        )
        observations = Observations(
            domain=domain,
            report=report,
            on_prem=on_prem,
            audit_events=events,
            failures=tuple(failures),
            audit_since=since,
        )
        cloud_unavailable = None
        shown = report
        if report is None and on_prem is not None:
            # what AD said is still shown; the Cloud* fields are marked unavailable with the reason
            shown = KerberosServerReport.combine(on_prem.server, domain, None)
            cloud_unavailable = next((f.message for f in failures if f.source == "Kerberos module"), "not read")
        return DomainStatus(
            domain=domain,
            report=shown,
            cloud_unavailable=cloud_unavailable,
            on_prem=on_prem,
            audit_events=tuple(events) if events is not None else None,
            diagnosis=diagnose(observations, now, self._settings.policy),
            checked_at=now,
            per_dc=versions,
        )

    async def _guard(self, source: str, failures: list[SourceFailure], call: Callable[[], Awaitable[T]]) -> T | None:
        """Run one read; a failure becomes a finding instead of failing the whole status."""
        timeout = self._settings.per_source_timeout.total_seconds()
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(call(), timeout=timeout)
        except KerberosBotError as exc:
            self._metrics.source_errors.labels(source, type(exc).__name__).inc()
            failures.append(SourceFailure(source, str(exc)))
        except TimeoutError:
            self._metrics.source_errors.labels(source, "Timeout").inc()
            failures.append(SourceFailure(source, f"no answer within {timeout:g} s"))
        except Exception:
            self._metrics.source_errors.labels(source, "Unexpected").inc()
            log.exception("unexpected error reading %s", source)
            failures.append(SourceFailure(source, "unexpected error (details in the bot's log)"))
        finally:
            self._metrics.source_seconds.labels(source).observe(time.perf_counter() - started)
        return None
