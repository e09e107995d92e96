"""Told means kept: with ``[changes] confirm_replicas``, a request or a click is answered only once the
configured number of Redis replicas hold it (WAIT on the connection that wrote it, bounded); when none
confirms in time, the answer says so and readiness reports durability degraded. On real processes: a
primary, a replica and three sentinels; the primary SIGKILLed right after an approval's answer.

A relay that hands the replica its copy half a second late shows what the setting trades: without it,
an approval the approver was told of is lost by the failover; with it, the answer waits that half second
and the approval is on the promoted replica, runs once, and nothing is left stuck."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from kerberos_sandbox.redis_ha import Sentinels
from kerberos_sandbox.slack_requests import block_actions_payload, interaction_form, send_slash_command
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.bootstrap.components import build_components
from bot.config import load_bot_config
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import StoreUnavailable
from bot.services.changes.engine import ChangeEngine
from bot.services.changes.executor import Execution
from bot.services.container import BotServices
from bot.services.status import StatusService
from handlers.views.cards import APPROVE_ACTION
from tests.contracts.test_approval_store import new_request
from tests.support.botserver import running_bot
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "minimal.toml"


def engine_on(store: RedisApprovalStore) -> tuple[ChangeEngine, FakeKerberosModule]:
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    return engine_on_fakes(directories={"contoso.test": directory}, store=store, module=module), module


async def until_written(store: RedisApprovalStore, timeout: float = 10.0) -> float:
    """Seconds until a write reaches a primary again (the bot following the failover by itself)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < timeout:
        try:
            await store.create(new_request(domain="fabrikam.test"))
            return loop.time() - started
        except StoreUnavailable:
            await asyncio.sleep(0.2)
    raise AssertionError(f"no primary took a write within {timeout} s")


@pytest.fixture
async def lagging(tmp_path: Path) -> AsyncIterator[Sentinels]:
    ha = Sentinels(tmp_path, replica_lag=0.5)
    await ha.start()
    yield ha
    await ha.stop()


@pytest.mark.parametrize("confirm", [0, 1])
async def test_an_approval_the_approver_was_told_of_survives_the_primarys_sigkill_only_when_confirmed(
    lagging: Sentinels, confirm: int
) -> None:
    store = RedisApprovalStore(
        connect(lagging.url),
        f"kbot-{uuid.uuid4().hex[:6]}",
        confirm_replicas=confirm,
        confirm_timeout=timedelta(seconds=2),
        reclaim_after=timedelta(0),
    )
    engine, module = engine_on(store)
    try:
        request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
        await asyncio.sleep(1.0)  # the request itself is on the replica in either case
        told = await engine.decisions.approve(request.id, "U0BOB")
        assert told.verdict == Verdict.APPROVED and told.kept is (True if confirm else None)
        await lagging.primary.kill()  # right after the answer
        await until_written(store)
        assert await lagging.primary_port() == lagging.replica.port
        kept = await store.get(request.id)
        assert kept is not None
        if not confirm:  # what the setting trades: the approval the approver was told of is gone
            assert kept.state == RequestState.PENDING and kept.approvals == ()
            return
        assert kept.state == RequestState.APPROVED and [a.approver for a in kept.approvals] == ["U0BOB"]
        done = await engine.executor.execute_next("w")  # runs once on the promoted replica
        assert isinstance(done, Execution) and done.succeeded and module.set_calls == 1
        assert await engine.executor.execute_next("w") is None and await store.executing() == []  # nothing stuck
    finally:
        await store.close()


async def test_when_no_replica_confirms_in_time_the_answer_says_so_and_readiness_is_degraded(tmp_path: Path) -> None:
    ha = Sentinels(tmp_path)
    await ha.start()
    store = RedisApprovalStore(
        connect(ha.primary.url),
        f"kbot-{uuid.uuid4().hex[:6]}",
        confirm_replicas=1,
        confirm_timeout=timedelta(seconds=0.3),
    )
    replica_pid = ha.replica.pid
    try:
        request = new_request(required=2)
        assert await store.create(request) is True
        assert (await store.approve(request.id, "U0BOB", datetime.now(UTC))).kept is True
        await store.confirmation()  # ready
        os.kill(replica_pid, signal.SIGSTOP)  # the replica stops answering
        try:
            slow = await store.approve(request.id, "U0CAROL", datetime.now(UTC))
            assert slow.verdict == Verdict.APPROVED and slow.kept is False  # recorded on the primary, not yet safe
            with pytest.raises(StoreUnavailable, match="durability degraded"):
                await store.confirmation()
        finally:
            os.kill(replica_pid, signal.SIGCONT)
        assert await store.create(new_request()) is True  # the replica is back: confirmed again
        await store.confirmation()
    finally:
        await store.close()
        await ha.stop()


async def test_the_approver_is_told_when_the_replicas_have_not_confirmed_and_readyz_checks_them(
    tmp_path: Path,
) -> None:
    ha = Sentinels(tmp_path)
    await ha.start()
    store = RedisApprovalStore(
        connect(ha.primary.url),
        f"kbot-{uuid.uuid4().hex[:6]}",
        confirm_replicas=1,
        confirm_timeout=timedelta(seconds=0.3),
    )
    engine, _module = engine_on(store)
    services = BotServices(StatusService({}, FakeKerberosModule({}), FakeEntra(), clock=lambda: NOW), changes=engine)
    try:
        async with SlackStandIn() as slack, running_bot(services, slack) as bot, aiohttp.ClientSession() as session:
            request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
            await engine.decisions.card_posted(request.id, "C0PLATFORM", "1.000100")
            payload = block_actions_payload(
                user_id="U0BOB",
                action_id=APPROVE_ACTION,
                value=engine.decisions.button_value(request),
                channel_id="C0PLATFORM",
                message_ts="1.000100",
            )
            os.kill(ha.replica.pid, signal.SIGSTOP)
            try:
                form = interaction_form(payload)
                assert (await send_slash_command(session, bot.endpoint, bot.signing_secret, form)).status == 200
                [told] = await slack.wait_for_api("chat.postEphemeral", 1, 15)
            finally:
                os.kill(ha.replica.pid, signal.SIGCONT)
        assert "no Redis replica confirmed it in time" in told.body["text"]
        config = tmp_path / "kerberos-bot.toml"
        config.write_text(MINIMAL.read_text(encoding="utf-8") + "confirm_replicas = 1\n", encoding="utf-8")
        components = build_components(load_bot_config(config), redis_url=ha.primary.url, store_prefix="kbot-ready")
        try:
            assert "redis replicas" in components.checks  # /readyz runs it
        finally:
            await components.aclose()
    finally:
        await store.close()
        await ha.stop()


async def test_a_claim_is_confirmed_by_a_replica_on_its_own_connection_before_a_change_starts(tmp_path: Path) -> None:
    ha = Sentinels(tmp_path)
    await ha.start()
    short = timedelta(seconds=0.3)
    store = RedisApprovalStore(
        connect(ha.primary.url), f"kbot-{uuid.uuid4().hex[:6]}", durability_timeout=short, reclaim_after=timedelta(0)
    )
    try:
        for _ in range(2):
            request = new_request(domain=f"{uuid.uuid4().hex[:6]}.test")
            await store.create(request)
            await store.approve(request.id, "U0BOB", datetime.now(UTC))
        first = await store.claim_next("w", timedelta(seconds=30), datetime.now(UTC))
        assert first is not None and await store.make_durable(first) == "WAIT: on 1 of 1 replicas"
        os.kill(ha.replica.pid, signal.SIGSTOP)  # the replica stops answering: the next claim is not confirmed
        try:
            second = await store.claim_next("w", timedelta(seconds=30), datetime.now(UTC))
            assert second is not None
            with pytest.raises(StoreUnavailable, match="did not confirm the claim on a replica"):
                await store.make_durable(second)
        finally:
            os.kill(ha.replica.pid, signal.SIGCONT)
    finally:
        await store.close()
        await ha.stop()
