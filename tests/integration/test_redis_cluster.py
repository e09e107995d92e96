"""The bot on a Redis Cluster (three primaries, three replicas on loopback, as Azure Managed Redis's OSS
clustering policy presents one): its keys share one hash tag, so every script touches one slot; a change
is requested, approved and carried out once; a setting that would let scripts cross slots, or ask the
cluster for a confirmation it cannot give, stops the bot with a message naming it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from kerberos_sandbox.redis_ha import LocalCluster

from bot.adapters.redis.client import connect
from bot.adapters.redis.keys import KEYSPACE
from bot.adapters.redis.store import RedisApprovalStore
from bot.bootstrap.components import build_components
from bot.config import load_bot_config
from bot.domain.approvals import RequestState, Verdict
from bot.domain.errors import ConfigurationError
from bot.services.changes.executor import Execution
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


def test_settings_the_cluster_cannot_honour_stop_the_bot_with_their_name(tmp_path: Path) -> None:
    config = tmp_path / "kerberos-bot.toml"
    config.write_text(MINIMAL.read_text(encoding="utf-8"), encoding="utf-8")
    url = "redis+cluster://127.0.0.1:1"
    with pytest.raises(ConfigurationError, match="is not one hash tag"):
        build_components(load_bot_config(config), redis_url=url, store_prefix="kerberos-bot")
    config.write_text(MINIMAL.read_text(encoding="utf-8") + "confirm_replicas = 1\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"\[changes\] confirm_replicas"):
        build_components(load_bot_config(config), redis_url=url, store_prefix=KEYSPACE)
