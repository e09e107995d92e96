"""The bot on a Redis Cluster (three primaries, three replicas on loopback, as Azure Managed Redis's OSS
clustering policy presents one): its keys share one hash tag, so every script touches one slot; a change
is requested, approved and carried out once; a setting that would let scripts cross slots, or ask the
cluster for a confirmation it cannot give, stops the bot with a message naming it."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kerberos_sandbox.redis_ha import LocalCluster

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.bootstrap.components import build_components
from bot.config import load_bot_config
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import ConfigurationError, StoreUnavailable
from bot.services.changes.executor import Execution
from tests.contracts.test_approval_store import new_request
from tests.support.engine import engine_on_fakes
from tests.support.fakes import NOW, FakeDirectory, FakeKerberosModule, on_prem_state
from tests.support.redis_keys import cluster_prefix

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "minimal.toml"


async def test_a_change_is_requested_approved_and_carried_out_once_on_a_cluster(redis_cluster: LocalCluster) -> None:
    store = RedisApprovalStore(connect(redis_cluster.url), cluster_prefix(), reclaim_after=timedelta(0))
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    engine = engine_on_fakes(directories={"contoso.test": directory}, store=store, module=module)
    try:
        request = await engine.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
        assert (await engine.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
        done = await engine.executor.execute_next("w")
        assert isinstance(done, Execution) and done.succeeded and module.set_calls == 1
        assert await engine.executor.execute_next("w") is None
        stored = await store.get(request.id)
        assert stored is not None and stored.state == RequestState.SUCCEEDED and stored.history
    finally:
        await store.close()


def test_a_prefix_the_cluster_cannot_honour_stops_the_bot_with_its_name(tmp_path: Path) -> None:
    config = tmp_path / "kerberos-bot.toml"
    config.write_text(MINIMAL.read_text(encoding="utf-8"), encoding="utf-8")
    url = "redis+cluster://127.0.0.1:1"
    with pytest.raises(ConfigurationError, match="is not one hash tag"):
        build_components(load_bot_config(config), redis_url=url, store_prefix="kerberos-bot")


async def test_a_click_on_a_cluster_is_answered_once_the_slots_replica_holds_it(redis_cluster: LocalCluster) -> None:
    """[changes] confirm_replicas on a cluster: the script and its WAIT go to the primary serving the keyspace's
    slot on one connection; with its replica stopped the answer says "not yet safe" and readiness fails."""
    prefix = cluster_prefix()
    store = RedisApprovalStore(connect(redis_cluster.url), prefix, confirm_replicas=1)
    try:
        request = new_request()
        assert await store.create(request) is True
        approved = await store.approve(request.id, "U0BOB", datetime.now(UTC))
        assert approved.verdict == Verdict.APPROVED and approved.kept is True
        await store.confirmation()  # durability is not degraded

        replica = redis_cluster.replica_of(await primary_port(redis_cluster.url, prefix))
        replica.send_signal(signal.SIGSTOP)  # the slot's replica stops acknowledging
        try:
            other = new_request()
            assert await store.create(other) is False  # recorded, but no replica confirmed it in time
            with pytest.raises(StoreUnavailable, match="durability degraded"):
                await store.confirmation()
        finally:
            replica.send_signal(signal.SIGCONT)
        third = new_request()
        assert await store.create(third) is True
        await store.confirmation()
    finally:
        await store.close()


async def primary_port(url: str, prefix: str) -> int:
    """The port of the primary that serves the keyspace's one slot."""
    cluster = connect(url)
    try:
        await cluster.initialize()
        return int(cluster.get_node_from_key(f"{prefix}:x").port)  # type: ignore[attr-defined]
    finally:
        await cluster.aclose()
