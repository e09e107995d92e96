"""A key prefix of a test's own on the shared Redis (127.0.0.1:6379), with every key under it deleted after;
and a Redis Cluster on loopback (three primaries, three replicas) for the contract suites, started once."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kerberos_sandbox.redis_ha import LocalCluster

from bot.adapters.redis.client import connect

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"kbot-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = connect(REDIS_URL)
    async for key in client.scan_iter(match=f"{name}:*", count=500):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Started the first time a suite asks (its contract cases on a cluster), stopped at the end."""
    with tempfile.TemporaryDirectory() as directory:
        cluster = LocalCluster(Path(directory))
        cluster.start()
        yield cluster
        cluster.stop()


def cluster_prefix() -> str:
    """A test's own keyspace on the cluster: one hash tag, as the bot's own is."""
    return "{kbot-test-" + uuid.uuid4().hex[:8] + "}"
