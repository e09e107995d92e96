"""REDIS_URL=memory://: every storage port in the process's own memory (the contract-tested in-memory
adapters, the same the unit suites run on), so a trial runs the whole approval flow without a Redis; the
bot says what that costs (a warning at start, `check` failing it, no worker process that would not share
the memory)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.memory.approvals import MemoryApprovalStore
from bot.bootstrap.components import ChatPeople, Surroundings, build_components
from bot.config import load_bot_config
from bot.config.settings import MEMORY_URL
from bot.domain.approvals import RequestState, Verdict
from bot.entrypoints.check import _redis
from bot.services.changes.executor import Execution
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state

MINIMAL = Path(__file__).resolve().parents[1] / "fixtures" / "minimal.toml"


async def test_a_change_runs_its_whole_approval_flow_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    approvers = '\n[approvals]\ndefault_approver_groups = ["S0ADMINS"]\n'
    (config := tmp_path / "kerberos-bot.toml").write_text(MINIMAL.read_text(encoding="utf-8") + approvers)
    directory = FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=40)))
    module = FakeKerberosModule.in_step({"contoso.test": directory})
    with caplog.at_level(logging.WARNING):
        components = build_components(
            load_bot_config(config),
            surroundings=Surroundings(directories={"contoso.test": directory}, entra=FakeEntra(), module=module),
            people=ChatPeople(groups=FakeGroups({"S0ADMINS": frozenset({"U0BOB"})})),
            redis_url=MEMORY_URL,
        )
    try:
        assert "kept in this process only" in caplog.text
        changes = components.services.changes
        assert changes is not None and isinstance(components.storage.store, MemoryApprovalStore)
        request = await changes.intake.request_rotation("contoso.test", requester="U0ALICE", reason="q", force=False)
        assert (await changes.decisions.approve(request.id, "U0BOB")).verdict == Verdict.APPROVED
        done = await changes.executor.execute_next("w")
        assert isinstance(done, Execution) and done.succeeded and module.set_calls == 1
        assert (await changes.queries.get(request.id)).state == RequestState.SUCCEEDED  # type: ignore[union-attr]
    finally:
        await components.aclose()


async def test_check_fails_it() -> None:
    result = await _redis(MEMORY_URL)
    assert not result.ok and "lost when it stops" in result.detail


def test_a_worker_process_is_refused() -> None:
    env = {**os.environ, "REDIS_URL": MEMORY_URL, "SLACK_BOT_TOKEN": "xoxb-test", "KERBEROS_BOT_CONFIG": str(MINIMAL)}
    done = subprocess.run([sys.executable, "-m", "bot", "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "a separate worker needs a Redis" in done.stderr and "Traceback" not in done.stderr
