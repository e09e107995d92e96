"""Use case: the status of the Entra Kerberos server in one or all configured domains."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

from bot.domain.diagnosis import diagnose
from bot.domain.errors import KerberosBotError, KerberosModuleError, UnknownDomainError
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


READS_AT_ONCE = 10  # domains read at the same time from each source by one status

# the sources of a status, as its findings name them
ACTIVE_DIRECTORY = "Active Directory"
KERBEROS_MODULE = "Kerberos module"
ENTRA_ID = "Entra ID"
EACH_DC = "each DC"


@dataclass(frozen=True)
class SharedReads:
    """What the domains of one status of many share: the module's one read of all of them (each domain's answer,
    and that read's time limit), and a bound on each source's reads at once."""

    module_answer: Callable[[str], Awaitable[KerberosServerReport]]
    module_timeout: float
    gates: Mapping[str, asyncio.Semaphore]


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
        self._many: SingleFlight[list[DomainStatus]] = SingleFlight()

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
        await within(self._limiter, bucket, capacity=per_minute, per_second=per_minute / 60, refusal=refusal)

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
        hundred LDAP connections at once), and the module is asked once for all of them: one session to the
        management host, which reads them in parallel, rather than a session per domain."""
        names = self.resolve(domain)
        if len(names) == 1:
            return [await self._reads.run((names[0], per_dc), partial(self._one, names[0], per_dc))]
        return await self._many.run((tuple(names), per_dc), partial(self._all, names, per_dc))

    async def _all(self, names: list[str], per_dc: bool) -> list[DomainStatus]:
        # one module read for every domain: its limit is the per-source one for each READS_AT_ONCE domains
        timeout = self._settings.per_source_timeout.total_seconds() * math.ceil(len(names) / READS_AT_ONCE)
        module_reads = asyncio.ensure_future(asyncio.wait_for(self._module.get_servers(names), timeout))

        async def module_answer(name: str) -> KerberosServerReport:
            answer = (await asyncio.shield(module_reads)).get(name)
            if isinstance(answer, KerberosBotError):
                raise answer
            if answer is None:
                raise KerberosModuleError(f"The module's answer named no report for {name}.")
            return answer

        # each source is read READS_AT_ONCE domains at a time; waiting for the module's answer holds no slot
        gates = {source: asyncio.Semaphore(READS_AT_ONCE) for source in (ACTIVE_DIRECTORY, ENTRA_ID, EACH_DC)}
        shared = SharedReads(module_answer, timeout, gates)
        try:
            return list(await asyncio.gather(*(self._one(name, per_dc, shared) for name in names)))
        finally:
            module_reads.cancel()  # a no-op once it has answered; else no one is left to hear it

    async def _one(
        self,
        domain: str,
        per_dc: bool = False,
        shared: SharedReads | None = None,
    ) -> DomainStatus:
        """One domain's status; ``shared``: it is one of a status of many (the module's report comes from the read
        of all of them, and each source's reads are bounded)."""
        now = self._clock()
        since = now - self._settings.audit_lookback
        failures: list[SourceFailure] = []
        directory = self._directories[domain]
        gates = shared.gates if shared is not None else {}
        read_module: Callable[[], Awaitable[KerberosServerReport]] = partial(self._module.get_server, domain)
        module_timeout = None
        if shared is not None:
            read_module, module_timeout = partial(shared.module_answer, domain), shared.module_timeout

        async def per_dc_versions() -> dict[str, int | None] | None:
            if not per_dc:
                return None
            return await self._guard(EACH_DC, failures, directory.read_key_versions_per_dc, gate=gates.get(EACH_DC))

        on_prem, report, events, versions = await asyncio.gather(
            self._guard(ACTIVE_DIRECTORY, failures, directory.read_kerberos_objects, gate=gates.get(ACTIVE_DIRECTORY)),
            self._guard(KERBEROS_MODULE, failures, read_module, module_timeout),
            self._guard(
                ENTRA_ID,
                failures,
                lambda: self._entra.kerberos_domain_events(domain, since=since),
                gate=gates.get(ENTRA_ID),
            ),
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
            cloud_unavailable = next((f.message for f in failures if f.source == KERBEROS_MODULE), "not read")
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

    async def _guard(
        self,
        source: str,
        failures: list[SourceFailure],
        call: Callable[[], Awaitable[T]],
        timeout: float | None = None,
        *,
        gate: asyncio.Semaphore | None = None,
    ) -> T | None:
        """Run one read (once ``gate`` lets it, then within ``timeout`` seconds, the per-source limit by default); a
        failure becomes a finding instead of failing the whole status."""
        async with gate if gate is not None else contextlib.nullcontext():
            return await self._timed(
                source, failures, call, timeout or self._settings.per_source_timeout.total_seconds()
            )

    async def _timed(
        self, source: str, failures: list[SourceFailure], call: Callable[[], Awaitable[T]], timeout: float
    ) -> T | None:
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
