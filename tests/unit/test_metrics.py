"""Metrics: nothing registered at import; each composition (each test's services) has its own set."""

from __future__ import annotations

import importlib

import prometheus_client

import bot.observability.metrics as metrics_module
from bot.observability.metrics import Metrics


def test_importing_registers_nothing_in_the_global_registry() -> None:
    importlib.reload(metrics_module)
    names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("kerberos_bot") for name in names)


def test_two_sets_count_apart_and_each_exposes_its_own() -> None:
    first, second = Metrics.create(), Metrics.create()
    first.commands.labels("status", "ok").inc()
    assert b'kerberos_bot_commands_total{outcome="ok",subcommand="status"} 1.0' in first.exposition()
    assert b'subcommand="status"' not in second.exposition()
