"""Use cases of the dangerous actions: request, decide, execute. The only place approval is enforced,
so no entry point can skip it.

This slice implements ``rotate`` (with and without ``--force``) end to end; the other actions
reuse the same request, decision and execution path once their pre-flight and plan are added.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

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
from bot.domain.errors import KerberosBotError, UnknownDomainError, UsageError
from bot.domain.ports import ActiveDirectory, KerberosModule, SetServerOptions

log = logging.getLogger(__name__)

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
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:10],
    ) -> None:
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
        policy = self._policies[action]
        directory = self._directory(domain)
        if policy.requester_groups and not await self._is_member(requester, policy.requester_groups):
            raise NotAllowed(f"You are not in a group allowed to request `{action.value}`.")
        if not reason.strip():
            raise UsageError(f"Say why, after `--`: `/kerberos {action.value} {domain} -- <reason>`.")
        state = await directory.read_kerberos_objects()
        server = state.server
        if server is None or server.key is None or server.krbtgt_dn is None:
            raise PreflightError(
                f"There is no Entra Kerberos server in {directory.domain_dns_name}: nothing to rotate."
            )
        now = self._clock()
        window = rotation_window(server.key.updated_on, now, self._rotation)
        if not window.allowed_now and not force:
            raise PreflightError(
                f"The key was changed at {server.key.updated_on:%Y-%m-%d %H:%M} UTC; propagation between KDCs "
                f"takes hours, so a rotation before {window.allowed_from:%Y-%m-%d %H:%M} UTC needs `--force` "
                f"({self._policies[Action.ROTATE_FORCE].approvals_required} approvals)."
            )
        plan = (
            f"Set-AzureADKerberosServer -Domain {directory.domain_dns_name} -RotateServerKey"
            + (" -Force" if force else ""),
            f"AD: new random key on {server.krbtgt_dn} (unicodePwd); KeyVersion {server.key.version} grows",
            "Entra: the KerberosDomain object gets the same key (CloudKeyVersion = KeyVersion)",
            "The new key takes hours to reach every KDC; the old key stays valid as the secondary key",
        )
        request = ChangeRequest(
            id=self._new_id(),
            action=action,
            domain=directory.domain_dns_name,
            requester=requester,
            reason=reason.strip(),
            plan=plan,
            created_at=now,
            expires_at=now + policy.ttl,
            approvals_required=policy.approvals_required,
            channel=channel,
            expected_key_version=server.key.version,
        )
        await self._store.create(request)
        return request

    # -- decide -----------------------------------------------------------------------------------
    async def approve(self, request_id: str, action: Action, approver: str) -> DecisionResult:
        if not await self._is_member(approver, self._policies[action].approver_groups):
            await self._store.refuse(request_id, approver, "not in an approver group", self._clock())
            return DecisionResult(Verdict.NOT_ALLOWED, await self._store.get(request_id))
        return await self._store.approve(request_id, approver, self._clock())

    async def deny(self, request_id: str, action: Action, approver: str, reason: str) -> DecisionResult:
        if not await self._is_member(approver, self._policies[action].approver_groups):
            await self._store.refuse(request_id, approver, "not in an approver group", self._clock())
            return DecisionResult(Verdict.NOT_ALLOWED, await self._store.get(request_id))
        return await self._store.deny(request_id, approver, reason, self._clock())

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
        token = await self._locks.acquire(request.domain, LOCK_TTL)
        if token is None:
            outcome = f"Another change to {request.domain} is running; this one was not started. Request it again."
            await self._store.finish(request.id, False, outcome, self._clock())
            return Execution(request, False, outcome)
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
        await self._store.finish(request.id, succeeded, outcome, self._clock())
        done = await self._store.get(request.id)
        return Execution(done or request, succeeded, outcome)

    async def _carry_out(self, request: ChangeRequest) -> tuple[bool, str]:
        if request.action not in (Action.ROTATE, Action.ROTATE_FORCE):
            return False, f"`{request.action.value}` is not implemented yet; nothing was changed."
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
        report = await self._module.set_server(
            request.domain, SetServerOptions(rotate_server_key=True, force=request.action == Action.ROTATE_FORCE)
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
