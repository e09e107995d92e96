"""A key prefix of a test's own on the shared Redis (127.0.0.1:6379), with every key under it deleted after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

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
