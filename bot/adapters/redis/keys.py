"""The bot's keyspace in Redis: every key it writes starts with ``KEYSPACE``, one hash tag, so every key
lives in one hash slot. A script then touches one slot whatever keys it names, and the bot runs alike on
a single server, behind Sentinel, and on a Redis Cluster (Azure Managed Redis's OSS clustering policy):
the bot's data is small, and one slot keeps each step atomic across a request, its indexes and its
domain's lock; a cluster gives it failover, not sharding."""

from __future__ import annotations

import os
import re

KEYSPACE = "{kerberos-bot}"
_ONE_TAG = re.compile(r"\{[^{}]+\}")


def one_slot(prefix: str) -> bool:
    """``prefix`` is a hash tag (``{name}``): every key under it hashes to one slot."""
    return bool(_ONE_TAG.fullmatch(prefix))


def call_key(base: str) -> str:
    """A key of one call's own under ``base``: a script keeps its answer there (lua/once.lua), so the call that
    redis-py sends again after losing the reply answers the same instead of running twice."""
    return f"{base}:call:{os.urandom(8).hex()}"
