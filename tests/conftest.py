"""Fixtures every suite may use, and ``--fast``: the quick loop (``make test-fast``)."""

from __future__ import annotations

import pytest

from tests.support.redis_keys import prefix, redis_cluster  # noqa: F401  (a key prefix of the test's own; a cluster)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the contract suites on their fakes only (no Redis, Samba or stand-in behind them); no Samba test",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--fast"):
        return
    kept, dropped = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "id", "")
        real_adapter = "/contracts/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("tests/contracts")
        if item.get_closest_marker("samba") or (real_adapter and not str(param).startswith("fake")):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
