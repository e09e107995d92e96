"""Use cases of the dangerous actions: request, decide, execute. The only place approval is enforced,
so no entry point can skip it.

This slice implements ``rotate`` (with and without ``--force``) end to end; the other actions
reuse the same request, decision and execution path once their pre-flight and plan are added.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bot.domain.approvals import (
    Action,
    ActionPolicy,
    ApprovalStore,
    ChangeRequest,
    DecisionResult,
    DomainLocks,
    GroupDirectory,
    RequestState,
    Verdict,
)
from bot.domain.diagnosis import RotationPolicy, rotation_window
from bot.domain.errors import ConfigurationError, KerberosBotError, UnknownDomainError, UsageError
from bot.domain.model import DEFAULT_TOP_LEVEL_NAMES
from bot.domain.ports import ActiveDirectory, KerberosModule, SetServerOptions
from bot.logs import REQUEST_ID, SLACK_USER
from bot.metrics import ACTION_SECONDS, REQUESTS_FINISHED
from bot.services.verification import ApproverVerification

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCK_TTL = timedelta(minutes=15)  # longer than any module call; a dead worker's lock expires


class PreflightError(UsageError):
    """The request cannot succeed; it is refused before any approver sees it."""


class NotAllowed(UsageError):
    pass


@dataclass(frozen=True)
class Execution:
    request: ChangeRequest
    succeeded: bool
    outcome: str
    new_key_version: int | None = None  # after a rotation: what every DC should come to hold


@dataclass(frozen=True)
class KeyPropagation:
    key_version: int
    agreed: tuple[str, ...]  # DCs that hold the new key
    lagging: tuple[str, ...]  # DCs that still show an older key, or did not answer
    waited: timedelta


class ChangeService:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        module: KerberosModule,
        directories: Mapping[str, ActiveDirectory],
        groups: GroupDirectory,
        policies: Mapping[Action, ActionPolicy],
        locks: DomainLocks,
        rotation: RotationPolicy,
        clock: Callable[[], datetime],
        forest_roots: Mapping[str, str] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:10],
        verification: ApproverVerification | None = None,
    ) -> None:
        self._verification = verification
        self._forest_roots = dict(forest_roots or {})  # domain -> its forest root (absent: itself)
        self._store = store
        self._module = module
        self._directories = dict(directories)
        self._groups = groups
        self._policies = dict(policies)
        self._locks = locks
        self._rotation = rotation
        self._clock = clock
        self._new_id = new_id

    async def _is_member(self, user: str, groups: frozenset[str]) -> bool:
        for group in groups:
            if user in await self._groups.members(group):
                return True
        return False

    def _directory(self, domain: str) -> ActiveDirectory:
        wanted = domain.strip().lower().rstrip(".")
        if wanted not in self._directories:
            raise UnknownDomainError(domain, list(self._directories))
        return self._directories[wanted]

    # -- request ----------------------------------------------------------------------------------
    async def request_rotation(
        self, domain: str, *, requester: str, reason: str, force: bool, channel: str | None = None
    ) -> ChangeRequest:
        action = Action.ROTATE_FORCE if force else Action.ROTATE
        directory = await self._may_request(action, requester, reason, domain)
        name = directory.domain_dns_name
        server = (await directory.read_kerberos_objects()).server
        if server is None or server.key is None or server.krbtgt_dn is None:
            raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to rotate.")
        window = rotation_window(server.key.updated_on, self._clock(), self._rotation)
        if not window.allowed_now and not force:
            raise PreflightError(
                f"The key was changed at {server.key.updated_on:%Y-%m-%d %H:%M} UTC; propagation between KDCs "
                f"takes hours, so a rotation before {window.allowed_from:%Y-%m-%d %H:%M} UTC needs `--force` "
                f"({self._policies[Action.ROTATE_FORCE].approvals_required} approvals)."
            )
        plan = (
            f"Set-AzureADKerberosServer -Domain {name} -RotateServerKey" + (" -Force" if force else ""),
            f"AD: new random key on {server.krbtgt_dn} (unicodePwd); KeyVersion {server.key.version} grows",
            "Entra: the KerberosDomain object gets the same key (CloudKeyVersion = KeyVersion)",
            "The new key takes hours to reach every KDC; the old key stays valid as the secondary key",
        )
        return await self._submit(
            action, name, requester, reason, plan, channel, expected_key_version=server.key.version
        )

    async def _submit(
        self,
        action: Action,
        domain: str,
        requester: str,
        reason: str,
        plan: tuple[str, ...],
        channel: str | None,
        expected_key_version: int | None = None,
        top_level_names: tuple[str, ...] = (),
    ) -> ChangeRequest:
        policy = self._policies[action]
        now = self._clock()
        request = ChangeRequest(
            id=self._new_id(),
            action=action,
            domain=domain,
            requester=requester,
            reason=reason.strip(),
            plan=plan,
            created_at=now,
            expires_at=now + policy.ttl,
            approvals_required=policy.approvals_required,
            channel=channel,
            expected_key_version=expected_key_version,
            top_level_names=top_level_names,
        )
        await self._store.create(request)
        return request

    async def _may_request(self, action: Action, requester: str, reason: str, domain: str) -> ActiveDirectory:
        directory = self._directory(domain)
        policy = self._policies[action]
        if policy.requester_groups and not await self._is_member(requester, policy.requester_groups):
            raise NotAllowed(f"You are not in a group allowed to request `{action.value}`.")
        if not reason.strip():
            raise UsageError(f"Say why, after `--`: `/kerberos {action.value} {domain} -- <reason>`.")
        return directory

    async def request_tdo_removal(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None
    ) -> ChangeRequest:
        directory = await self._may_request(Action.REMOVE_TDO, requester, reason, domain)
        name = directory.domain_dns_name
        state = await directory.read_kerberos_objects()
        if state.trusted_domain is None:
            raise PreflightError(f"There is no trusted domain object in {name}: nothing to remove.")
        plan = (
            f"Remove-AzureADKerberosServerTrustedDomainObject -Domain {name}",
            f"AD: delete {state.trusted_domain.dn} and its trust account KERBEROS$",
            "Entra: the cloud trust is cleared (CloudTrustDisplay becomes empty)",
            "Kept: the krbtgt_AzureAD account and the AzureADKerberos computer, so FIDO sign-in keeps working; "
            "the incoming trust-based flow (Azure SQL Managed Instance) stops",
        )
        return await self._submit(Action.REMOVE_TDO, name, requester, reason, plan, channel)

    def _forest_root(self, domain: str) -> str:
        return self._forest_roots.get(domain, domain)

    async def request_setup(
        self,
        domain: str,
        *,
        requester: str,
        reason: str,
        top_level_names: tuple[str, ...] = DEFAULT_TOP_LEVEL_NAMES,
        channel: str | None = None,
    ) -> ChangeRequest:
        directory = await self._may_request(Action.SETUP, requester, reason, domain)
        name = directory.domain_dns_name
        root = self._forest_root(name)
        state = await directory.read_kerberos_objects()
        is_root = root == name
        if is_root and state.server is not None and state.trusted_domain is not None:
            raise PreflightError(f"{name} already has the Kerberos server and the cloud trust: nothing to set up.")
        if not is_root:
            if state.server is not None:
                raise PreflightError(f"{name} already has the Kerberos server: nothing to set up.")
            root_state = await self._directory(root).read_kerberos_objects()
            if root_state.trusted_domain is None:
                raise PreflightError(
                    f"{name} is a child domain of the forest {root}: the cloud trust is set up in the forest root "
                    f"first (`/kerberos setup {root}`), then in {name} without it. (Microsoft's module fails "
                    "otherwise with LsaCreateTrustedDomainEx 0x549.)"
                )
        switches = " -SetupCloudTrust" if is_root else ""
        if is_root and tuple(top_level_names) != DEFAULT_TOP_LEVEL_NAMES:
            switches += f' -TopLevelNames "{",".join(top_level_names)}"'
        plan = [f"Set-AzureADKerberosServer -Domain {name}{switches}"]
        if state.server is None:
            plan.append(f"AD: create the krbtgt_AzureAD account and the AzureADKerberos computer in {name}")
            plan.append("Entra: register the Kerberos server (KerberosDomain) with the same key")
        if is_root:
            plan.append(
                f"AD: create the inbound trusted domain object KERBEROS.MICROSOFTONLINE.COM (top-level names "
                f"{', '.join(top_level_names)}); Entra records the cloud trust"
            )
        else:
            plan.append(f"No cloud trust here: it lives in the forest root {root}")
        return await self._submit(
            Action.SETUP,
            name,
            requester,
            reason,
            tuple(plan),
            channel,
            top_level_names=tuple(top_level_names) if is_root else (),
        )

    async def request_removal(
        self, domain: str, *, requester: str, reason: str, channel: str | None = None
    ) -> ChangeRequest:
        directory = await self._may_request(Action.REMOVE_ALL, requester, reason, domain)
        name = directory.domain_dns_name
        state = await directory.read_kerberos_objects()
        if state.server is None and state.trusted_domain is None:
            raise PreflightError(f"There is no Entra Kerberos server in {name}: nothing to remove.")
        plan = (
            f"Remove-AzureAdKerberosServer -Domain {name}",
            "AD: delete the trusted domain object (if any), the krbtgt_AzureAD account, the AzureADKerberos "
            "computer and the service connection point",
            "Entra: delete the Kerberos server object",
            "Afterwards neither FIDO sign-in nor the incoming trust-based flow works in this domain",
        )
        return await self._submit(Action.REMOVE_ALL, name, requester, reason, plan, channel)

    # -- decide -----------------------------------------------------------------------------------
    async def approve(self, request_id: str, action: Action, approver: str) -> DecisionResult:
        """Count an approval. For actions with ``verified_approval`` it counts only when the approver
        has a fresh verified Entra sign-in; otherwise the answer is VERIFY_FIRST and nothing is recorded."""
        policy = self._policies[action]
        if not await self._is_member(approver, policy.approver_groups):
            await self._store.refuse(request_id, approver, "not in an approver group", self._clock())
            return DecisionResult(Verdict.NOT_ALLOWED, await self._store.get(request_id))
        identity = None
        if policy.verified_approval:
            if self._verification is None:
                raise ConfigurationError(
                    f"`{action.value}` needs verified approvals but [approvals.verification] is not configured."
                )
            early = await self._refused_before_verification(request_id, approver)
            if early is not None:
                return early
            identity = await self._verification.fresh(approver)
            if identity is None:
                request = await self._store.get(request_id)
                return DecisionResult(Verdict.VERIFY_FIRST, request, len(request.approvals) if request else 0)
        return await self._store.approve(request_id, approver, self._clock(), identity)

    async def _refused_before_verification(self, request_id: str, approver: str) -> DecisionResult | None:
        """The answer a click would get anyway, so nobody is asked to sign in for nothing. The store
        decides again, atomically, when the approval is recorded."""
        request = await self._store.get(request_id)
        if request is None:
            return DecisionResult(Verdict.NOT_FOUND, None)
        count = len(request.approvals)
        if request.state != RequestState.PENDING:
            return DecisionResult(Verdict.NOT_PENDING, request, count)
        if self._clock() >= request.expires_at:
            return DecisionResult(Verdict.EXPIRED, request, count)
        if request.requester == approver:
            await self._store.refuse(
                request_id, approver, "the requester cannot approve their own request", self._clock()
            )
            return DecisionResult(Verdict.SELF_APPROVAL, request, count)
        if any(a.approver == approver for a in request.approvals):
            return DecisionResult(Verdict.DUPLICATE, request, count)
        return None

    async def refuse_unverified(self, request_id: str, approver: str, why: str) -> None:
        """Audit an approval whose Entra sign-in did not verify the approver; nothing else changes."""
        await self._store.refuse(request_id, approver, f"verification failed: {why}", self._clock())

    def needs_verification(self, action: Action) -> bool:
        return self._policies[action].verified_approval

    async def deny(self, request_id: str, action: Action, approver: str, reason: str) -> DecisionResult:
        if not await self._is_member(approver, self._policies[action].approver_groups):
            await self._store.refuse(request_id, approver, "not in an approver group", self._clock())
            return DecisionResult(Verdict.NOT_ALLOWED, await self._store.get(request_id))
        return await self._store.deny(request_id, approver, reason, self._clock())

    async def expire_due(self) -> list[ChangeRequest]:
        expired = []
        for request_id in await self._store.expire_due(self._clock()):
            request = await self._store.get(request_id)
            if request is not None:
                expired.append(request)
        return expired

    async def card_posted(self, request_id: str, channel: str, message_ts: str) -> None:
        await self._store.set_message(request_id, channel, message_ts)

    async def get(self, request_id: str) -> ChangeRequest | None:
        return await self._store.get(request_id)

    async def cancel(self, request_id: str, requester: str) -> DecisionResult:
        return await self._store.cancel(request_id, requester, self._clock())

    # -- execute ----------------------------------------------------------------------------------
    async def execute_next(self, consumer: str, block_ms: int = 0) -> Execution | None:
        """Claim one approved request and carry it out; at most once, whatever happens."""
        request = await self._store.next_approved(consumer, block_ms)
        if request is None:
            return None
        REQUEST_ID.set(f"change-{request.id}")  # the worker's log lines carry the change request
        SLACK_USER.set(request.requester)
        await self._step(request, f"claimed by {consumer}")
        token = await self._locks.acquire(request.domain, LOCK_TTL)
        if token is None:
            outcome = f"Another change to {request.domain} is running; this one was not started. Request it again."
            await self._store.finish(request.id, False, outcome, self._clock())
            return Execution(request, False, outcome)
        started = time.perf_counter()
        try:
            succeeded, outcome = await self._carry_out(request)
        except KerberosBotError as exc:
            succeeded, outcome = False, f"Failed: {exc}"
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("executing request %s failed (ref %s)", request.id, ref)
            succeeded, outcome = False, f"Failed with an unexpected error (reference {ref}); see the bot's log."
        finally:
            await self._locks.release(request.domain, token)
        ACTION_SECONDS.labels(request.action.value, "succeeded" if succeeded else "failed").observe(
            time.perf_counter() - started
        )
        REQUESTS_FINISHED.labels(request.action.value, "succeeded" if succeeded else "failed").inc()
        log.info(
            "request %s (%s %s) %s",
            request.id,
            request.action.value,
            request.domain,
            "succeeded" if succeeded else "failed",
        )
        await self._step(request, "finished: " + ("succeeded" if succeeded else "failed"))
        await self._store.finish(request.id, succeeded, outcome, self._clock())
        done = await self._store.get(request.id)
        new_version = None
        if succeeded and request.action in (Action.ROTATE, Action.ROTATE_FORCE):
            server = (await self._directory(request.domain).read_kerberos_objects()).server
            new_version = server.key.version if server and server.key else None
        return Execution(done or request, succeeded, outcome, new_version)

    async def follow_key(
        self, domain: str, key_version: int, *, interval: timedelta, give_up_after: timedelta
    ) -> KeyPropagation:
        """Read the key on every configured DC until all hold ``key_version`` or the time is up."""
        directory = self._directory(domain)
        started = self._clock()
        while True:
            versions = await directory.read_key_versions_per_dc()
            agreed = tuple(dc for dc, v in versions.items() if v is not None and v >= key_version)
            lagging = tuple(dc for dc in versions if dc not in agreed)
            waited = self._clock() - started
            if not lagging or waited >= give_up_after:
                return KeyPropagation(key_version, agreed, lagging, waited)
            await asyncio.sleep(interval.total_seconds())

    async def _step(self, request: ChangeRequest, step: str) -> None:
        await self._store.record_step(request.id, step, self._clock())

    async def _module_call(self, request: ChangeRequest, cmdlet: str, call: Awaitable[T]) -> T:
        """Journal around the one step that changes AD and Entra, so a crash inside it is visible later."""
        await self._step(request, f"module call started: {cmdlet}")
        result = await call
        await self._step(request, f"module call returned: {cmdlet}")
        return result

    async def recover(self) -> list[ChangeRequest]:
        """Flag requests whose worker died mid-action; never run them again. Call when a worker starts."""
        flagged = []
        for request in await self._store.executing():
            if await self._locks.held(request.domain):
                continue  # a live worker (maybe another replica) holds the domain's lock
            steps = [line.split(" ", 1)[1] for line in request.journal]
            started = any(s.startswith("module call started") for s in steps)
            returned = any(s.startswith("module call returned") for s in steps)
            if started and not returned:
                advice = (
                    "The worker stopped inside the module call: AD may be changed and Entra not (or the other way "
                    "round). Run `/kerberos status` and, if the key versions differ, a forced rotation."
                )
            elif returned:
                advice = "The change was made; it was not verified. Run `/kerberos status` to check it."
            else:
                advice = "The worker stopped before changing anything. Request it again if it is still needed."
            note = f"Needs attention: {advice} Steps recorded: {'; '.join(steps) or 'none'}."
            if await self._store.flag_attention(request.id, note, self._clock()):
                flagged.append(await self._store.get(request.id) or request)
        return flagged

    async def _carry_out(self, request: ChangeRequest) -> tuple[bool, str]:
        if request.action == Action.REMOVE_TDO:
            return await self._carry_out_tdo_removal(request)
        if request.action == Action.SETUP:
            return await self._carry_out_setup(request)
        if request.action == Action.REMOVE_ALL:
            return await self._carry_out_removal(request)
        return await self._carry_out_rotation(request)

    async def _carry_out_tdo_removal(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        if (await directory.read_kerberos_objects()).trusted_domain is None:
            return False, "Stopped: the trusted domain object is already gone; nothing was changed."
        cmdlet = "Remove-AzureADKerberosServerTrustedDomainObject"
        await self._module_call(request, cmdlet, self._module.remove_trusted_domain_object(request.domain))
        after = await directory.read_kerberos_objects()
        if after.trusted_domain is not None:
            return False, "The module reported success but the trusted domain object is still in AD."
        if after.server is None:
            return False, "The trusted domain object is gone, but so is the Kerberos server: FIDO sign-in stops."
        return True, (
            "Removed the trusted domain object. The Entra Kerberos server stays, so FIDO sign-in keeps working; "
            "the incoming trust-based flow for Azure SQL Managed Instance no longer does."
        )

    async def _carry_out_setup(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        is_root = self._forest_root(request.domain) == request.domain
        before = await directory.read_kerberos_objects()
        if before.server is not None and (before.trusted_domain is not None or not is_root):
            return False, "Stopped: it is already set up; nothing was changed."
        options = SetServerOptions(setup_cloud_trust=is_root, top_level_names=request.top_level_names or None)
        report = await self._module_call(
            request, "Set-AzureADKerberosServer", self._module.set_server(request.domain, options)
        )
        after = await directory.read_kerberos_objects()
        if after.server is None or (is_root and after.trusted_domain is None):
            return False, "The module reported success but the objects are not all in AD."
        if report.key_version != report.cloud_key_version:
            return False, f"Set up, but KeyVersion {report.key_version} != CloudKeyVersion {report.cloud_key_version}."
        trust = (
            f" and the cloud trust (top-level names {', '.join(after.trusted_domain.top_level_names)})"
            if after.trusted_domain is not None
            else ""
        )
        return True, (
            f"Set up the Entra Kerberos server (ID {report.id}, KeyVersion {report.key_version}){trust}. "
            "Microsoft recommends a forced rotation right after creating the trusted domain object."
        )

    async def _carry_out_removal(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        before = await directory.read_kerberos_objects()
        if before.server is None and before.trusted_domain is None:
            return False, "Stopped: there is nothing left to remove; nothing was changed."
        await self._module_call(request, "Remove-AzureAdKerberosServer", self._module.remove_server(request.domain))
        after = await directory.read_kerberos_objects()
        report = await self._module.get_server(request.domain)
        if after.server is not None or after.trusted_domain is not None or report.has_cloud:
            return False, "The module reported success but objects remain; check `/kerberos status`."
        return (
            True,
            "Removed all Kerberos settings: the trusted domain object, the service account, the computer "
            "object and the Entra object. FIDO sign-in and the trust-based flow no longer work in this domain.",
        )

    async def _carry_out_rotation(self, request: ChangeRequest) -> tuple[bool, str]:
        directory = self._directory(request.domain)
        before = await directory.read_kerberos_objects()
        key = before.server.key if before.server else None
        if key is None:
            return False, "Stopped: the Kerberos server is gone since the request; nothing was changed."
        if request.expected_key_version is not None and key.version != request.expected_key_version:
            return False, (
                f"Stopped: the key changed since the request (KeyVersion {request.expected_key_version} -> "
                f"{key.version}); nothing was changed."
            )
        options = SetServerOptions(rotate_server_key=True, force=request.action == Action.ROTATE_FORCE)
        await self._step(request, f"re-validated: KeyVersion {key.version}")
        report = await self._module_call(
            request, "Set-AzureADKerberosServer -RotateServerKey", self._module.set_server(request.domain, options)
        )
        after = await directory.read_kerberos_objects()
        new_key = after.server.key if after.server else None
        if new_key is None or new_key.version == key.version:
            return False, "The module reported success but AD still holds the old key."
        if report.key_version != report.cloud_key_version:
            return False, (
                f"Rotated in AD (KeyVersion {new_key.version}) but Entra shows CloudKeyVersion "
                f"{report.cloud_key_version}: Kerberos for cloud users breaks until they match. Rotate with --force."
            )
        return True, (
            f"Rotated: KeyVersion {key.version} -> {new_key.version}, CloudKeyVersion {report.cloud_key_version}. "
            "The new key takes several hours to reach every KDC. The old key stays valid as the secondary key; "
            "rotate again after 24 hours to retire it fully."
        )

    async def pending_or_recent(self, count: int = 20) -> list[ChangeRequest]:
        return list(await self._store.recent(count))

    @staticmethod
    def is_open(request: ChangeRequest) -> bool:
        return request.state in (RequestState.PENDING, RequestState.APPROVED, RequestState.EXECUTING)
