"""Faults on real processes: ``kerberos-bot serve`` (whose change worker carries out approved requests)
killed with SIGKILL before, inside and after the module call, and a domain controller frozen with
SIGSTOP in the middle of a change, on the real Redis, the Samba DC and the Entra stand-in.

Each ends with no double execution, nothing left approved or executing, a clear outcome on the
request and a complete audit trail. The served bot runs with a 3-second lease (``[changes]
lease_seconds``) so that a dead worker's request is flagged in seconds, not in the production 30.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kerberos_sandbox.sandbox import SANDBOX_GROUPS, Sandbox, seed

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.bootstrap.policy import action_policies, integrity_signer
from bot.config import load_bot_config
from bot.domain.approvals import Action, ChangeRequest, RequestState
from bot.domain.hints import hint
from bot.services.changes.engine import ChangeEngine
from tests.support.engine import engine_on_fakes
from tests.support.fakes import FakeGroups
from tests.support.processes import descendants
from tests.support.served import start_serve

pytestmark = pytest.mark.samba

REDIS_URL = "redis://127.0.0.1:6379/11"  # the served bot uses the default key prefix: its own database
SECRET = "fault-injection-secret"
DOMAIN = "contoso.test"
APPROVERS = ("U0BOB", "U0CAROL")


@contextlib.contextmanager
def frozen(box: Sandbox, domain: str = DOMAIN) -> Iterator[None]:
    """SIGSTOP every process of the domain's Samba DC (it accepts connections and answers nothing)."""
    [dc] = [d for d in box.domains if d.name == domain]
    master = int((dc.samba.directory / "run" / "samba.pid").read_text().strip())
    pids = [master, *descendants(master)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@dataclass
class World:
    box: Sandbox
    config: Path
    changes: ChangeEngine  # the test's hand: requests and approvals, into the served bot's Redis
    store: RedisApprovalStore
    procs: list[asyncio.subprocess.Process]

    async def serve(self) -> asyncio.subprocess.Process:
        started = await start_serve(self.box, secret=SECRET, redis_url=REDIS_URL, config=self.config, command_workers=0)
        proc = started.proc
        self.procs.append(proc)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                assert proc.returncode is None, f"kerberos-bot serve exited with {proc.returncode}"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with session.get(f"{started.health}/healthz") as response:
                        if response.status == 200:
                            return proc
                await asyncio.sleep(0.1)
        raise AssertionError("kerberos-bot serve did not start")

    async def requested(self, action: Action, reason: str = "fault test") -> ChangeRequest:
        ask: dict[str, Any] = {"requester": "U0ALICE", "reason": reason}
        if action == Action.ROTATE_FORCE:
            return await self.changes.intake.request_rotation(DOMAIN, force=True, **ask)
        return await self.changes.intake.request_remove_all(DOMAIN, **ask)

    async def approve(self, request: ChangeRequest) -> ChangeRequest:
        for approver in APPROVERS[: request.approvals_required]:
            await self.changes.decisions.approve(request.id, approver)
        return request

    async def approved(self, action: Action, reason: str = "fault test") -> ChangeRequest:
        return await self.approve(await self.requested(action, reason))

    async def until(
        self, request_id: str, done: Callable[[ChangeRequest], bool], timeout: float = 60.0
    ) -> ChangeRequest:
        for _ in range(int(timeout / 0.05)):
            request = await self.store.get(request_id)
            if request is not None and done(request):
                return request
            await asyncio.sleep(0.05)
        raise AssertionError(f"request {request_id} never got there: {await self.store.get(request_id)}")

    async def key_version(self) -> int | None:
        report = await self.box.components.module.get_server(DOMAIN)
        return report.key_version


def journal_has(step: str) -> Callable[[ChangeRequest], bool]:
    return lambda r: any(line.split(" ", 1)[1].startswith(step) for line in r.journal)


def in_state(*states: RequestState) -> Callable[[ChangeRequest], bool]:
    return lambda r: r.state in states


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()


@pytest.fixture
async def world(box: Sandbox, tmp_path: Path) -> AsyncIterator[World]:
    await seed(box.domains, box.components)
    config = tmp_path / "kerberos-bot.toml"
    # [changes] is the sandbox configuration's last table
    config.write_text(box.config_path.read_text() + "\nlease_seconds = 3\n", encoding="utf-8")
    store = RedisApprovalStore(connect(REDIS_URL))  # the served bot's default keyspace
    changes = engine_on_fakes(
        store=store,
        module=box.components.module,
        directories=box.components.directories,
        groups=FakeGroups({g: frozenset(users) for g, users in SANDBOX_GROUPS.items()}),
        policies=action_policies(load_bot_config(config)),  # the served bot's own policies and key
        signer=integrity_signer(load_bot_config(config)),
        clock=lambda: datetime.now(UTC),
    )
    running = World(box, config, changes, store, [])
    try:
        yield running
    finally:
        box.entra.clear_faults()
        for proc in running.procs:
            if proc.returncode is None:
                await kill(proc)
        client = connect(REDIS_URL)
        async for key in client.scan_iter(match="{kerberos-bot}:*"):
            await client.delete(key)
        await client.aclose()
        await store.close()
        await seed(box.domains, box.components)


async def assert_trail(world: World, request_id: str, last: str) -> None:
    events = [e.event for e in await world.store.audit(request_id)]
    assert events[0] == "requested" and events.count("claimed") == 1 and events[-1] == last, events


async def test_killed_inside_the_module_call_is_flagged_and_the_next_change_runs(world: World) -> None:
    bot = await world.serve()
    world.box.entra.fail_next("store", None, delay=30)  # the module's write to Entra hangs: AD is changed
    request = await world.approved(Action.ROTATE_FORCE)
    await world.until(request.id, journal_has("module call started"))
    await asyncio.sleep(0.5)  # the AD half is written
    await kill(bot)
    world.box.entra.clear_faults()
    await world.serve()
    flagged = await world.until(request.id, in_state(RequestState.ATTENTION), timeout=30)
    assert "stopped inside the module call" in (flagged.outcome or "")
    await assert_trail(world, request.id, "attention")
    # the domain is free again: the forced rotation that repairs the drift runs at once
    repair = await world.approved(Action.ROTATE_FORCE, "repair the drift")
    done = await world.until(repair.id, in_state(RequestState.SUCCEEDED, RequestState.FAILED), timeout=30)
    assert done.state == RequestState.SUCCEEDED, done.outcome
    await assert_trail(world, repair.id, "succeeded")


async def test_killed_between_the_claim_and_the_module_call_never_runs(world: World) -> None:
    bot = await world.serve()
    before = await world.key_version()
    request = await world.requested(Action.ROTATE_FORCE)
    with frozen(world.box):  # the worker's re-validation read hangs: it is past the claim, before the module
        await world.approve(request)
        await world.until(request.id, journal_has("claim durable"))
        await kill(bot)
    await world.serve()
    flagged = await world.until(request.id, in_state(RequestState.ATTENTION), timeout=30)
    assert "stopped before changing anything" in (flagged.outcome or "")
    await asyncio.sleep(4)  # longer than a lease and a sweep: still not run
    assert (await world.store.get(request.id)).state == RequestState.ATTENTION  # type: ignore[union-attr]
    assert await world.key_version() == before
    await assert_trail(world, request.id, "attention")


async def test_killed_after_the_module_call_says_the_change_was_made(world: World) -> None:
    bot = await world.serve()
    world.box.entra.fail_next("store", None)  # the module's own DELETE goes through ...
    world.box.entra.fail_next("store", None, delay=30)  # ... the read that verifies it hangs
    request = await world.approved(Action.REMOVE_ALL)
    await world.until(request.id, journal_has("module call returned"))
    await kill(bot)
    world.box.entra.clear_faults()
    await world.serve()
    flagged = await world.until(request.id, in_state(RequestState.ATTENTION), timeout=30)
    assert "The change was made; it was not verified" in (flagged.outcome or "")
    report = await world.box.components.module.get_server(DOMAIN)
    assert not report.has_on_prem and not report.has_cloud  # removed once, and only once
    await assert_trail(world, request.id, "attention")


async def test_a_dc_frozen_mid_change_ends_the_request_with_what_is_known(world: World) -> None:
    # the served bot waits 4 s for an LDAP operation (10 by default): the same refusal, two waits sooner
    text = world.config.read_text(encoding="utf-8")
    world.config.write_text(
        text.replace('name = "contoso.test"\n', 'name = "contoso.test"\noperation_timeout_seconds = 4\n', 1),
        encoding="utf-8",
    )
    await world.serve()
    world.box.entra.fail_next("store", None, delay=2)  # holds the change inside the module call a moment
    request = await world.approved(Action.ROTATE_FORCE)
    await world.until(request.id, journal_has("module call started"))
    with frozen(world.box):
        done = await world.until(request.id, in_state(RequestState.FAILED, RequestState.ATTENTION), timeout=90)
    assert done.state == RequestState.FAILED and done.outcome is not None
    assert "did not answer within 4 s" in done.outcome  # the change's own read, named
    assert "What exists now could not be read" in done.outcome and hint("status contoso.test") in done.outcome
    await assert_trail(world, request.id, done.state.value)
    assert await world.store.executing() == []


async def test_a_worker_stopped_past_its_lease_never_calls_the_module_when_it_resumes(world: World) -> None:
    bot = await world.serve()
    before = await world.key_version()
    request = await world.requested(Action.ROTATE_FORCE)
    with frozen(world.box):  # the worker's read before the module call hangs: it is past the claim
        await world.approve(request)
        await world.until(request.id, journal_has("re-validated against the stored policy"))
        await asyncio.sleep(0.3)  # inside that read
        bot.send_signal(signal.SIGSTOP)  # the worker stops, longer than its 3-second lease
    try:
        flagged: list[ChangeRequest] = []
        for _ in range(200):  # another worker's sweep flags the request and frees the domain
            flagged = await world.changes.executor.recover()
            if flagged:
                break
            await asyncio.sleep(0.1)
        assert [r.id for r in flagged] == [request.id]
    finally:
        bot.send_signal(signal.SIGCONT)
    late = await world.until(request.id, lambda r: journal_has("finished")(r), timeout=30)
    assert not journal_has("module call started")(late), late.journal  # it stopped at the fence
    assert await world.key_version() == before  # nothing was changed
    finished_late = [e for e in await world.store.audit(request.id) if e.event == "finished_late"]
    assert finished_late and "lost its claim" in finished_late[0].detail
