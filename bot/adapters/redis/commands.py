"""The command queue in Redis: one stream read by a consumer group, so each command goes to one worker.

Keys (``P`` is the configured prefix):
    P:commands   stream: acknowledged slash commands waiting for their follow-up work (group "command-workers"),
                 each entry one field, ``entry``: the command as a JSON document
    P:commands:taken:<digest>   an entry taken (an hour): its copy from a retried write is dropped

A command is acknowledged to Redis as soon as a worker takes it (at most once): redoing a command a
crashed worker had half done could post a second approval request, which is worse than asking the
user to type it again. A write retried after a timeout can leave an entry twice; the copy is dropped when
taken, so exactly once. Workers drop commands too old to answer (Slack's response URLs
last 30 minutes). The stream is capped, so a backlog with no worker cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.adapters.redis.batching import GroupWriter
from bot.adapters.redis.client import store_errors
from bot.adapters.redis.keys import KEYSPACE, call_key
from bot.adapters.redis.scripts import lua_script
from bot.domain.ports import DeferredCommand

GROUP = "command-workers"
_ENTRY = json.JSONEncoder(separators=(",", ":"))  # one encoder for every entry, not one per json.dumps
MAX_BACKLOG = 10_000
TAKEN_MARK_SECONDS = 3600  # longer than a queued command stays worth answering (response URLs last 30 minutes)


class RedisCommandQueue:
    def __init__(self, client: aioredis.Redis, prefix: str = KEYSPACE) -> None:
        # redis-py's annotations ignore decode_responses=True; every reply here is str by construction
        self._redis: Any = client
        self._key = f"{prefix}:commands"
        self._taken = f"{prefix}:commands:taken"
        self._group_ready = False
        self._group_lock = asyncio.Lock()
        self._entries = GroupWriter(self._write)
        self._queue_commands = self._redis.register_script(lua_script("queue_commands"))
        self._settle_commands = self._redis.register_script(lua_script("settle_commands", "once"))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        # one creation for a burst of first commands, not one each (with a cluster client, a storm of first
        # commands on fresh connections trips redis-py; one is all the group needs)
        async with self._group_lock:
            if self._group_ready:
                return
            try:
                await self._redis.xgroup_create(self._key, GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._group_ready = True

    async def put(self, command: DeferredCommand) -> None:
        """Returns once the command is in Redis. Commands put while another write is on the wire go out
        together in the next pipeline (``batching.GroupWriter``)."""
        await self._ensure_group()  # before the first command, so no worker can miss it
        fields = {
            "text": command.text,
            "user": command.user_id,
            "channel": command.channel_id,
            "reply_to": command.reply_to,
            "request_id": command.request_id,
            "queued_at": command.queued_at.isoformat(),
            "team": command.team_id,
            "app": command.app_id,
            "mac": command.mac,
        }
        await self._entries.submit(_ENTRY.encode(fields))

    async def _write(self, entries: Sequence[str]) -> list[None]:
        # one script for the batch, one field per entry: the event loop packs a few arguments per command,
        # where a pipeline of XADDs cost it eighteen and an awaited reply each
        await self._queue_commands(keys=[self._key], args=[MAX_BACKLOG, *entries])
        return [None] * len(entries)

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        with store_errors("the command was not taken"):
            await self._ensure_group()
            answer = await self._redis.xreadgroup(
                GROUP, consumer, {self._key: ">"}, count=count, block=block_ms or None
            )
            messages = [message for _stream, batch in answer or [] for message in batch]
            if messages:  # at most once: settled as soon as taken, and deleted (no acknowledged backlog)
                firsts = await self._settle(messages)
                messages = [message for message, first in zip(messages, firsts, strict=True) if first]
        commands: list[DeferredCommand] = []
        for _id, entry in messages:
            fields = entry_fields(entry)
            commands.append(
                DeferredCommand(
                    text=fields.get("text", ""),
                    user_id=fields.get("user", ""),
                    channel_id=fields.get("channel", ""),
                    reply_to=fields.get("reply_to", ""),
                    request_id=fields.get("request_id", "-"),
                    queued_at=_parse_time(fields.get("queued_at", "")),
                    team_id=fields.get("team", ""),
                    app_id=fields.get("app", ""),
                    mac=fields.get("mac", ""),
                )
            )
        return commands

    async def _settle(self, messages: list[tuple[str, dict[str, str]]]) -> list[bool]:
        """Acknowledge and delete ``messages``, and mark each as taken: True for an entry taken the first time.
        A write retried after its reply was lost (a timeout, a failover) may have left the same entry twice;
        its copy finds the mark and is dropped, so a command is never run twice."""
        ids = [message_id for message_id, _ in messages]
        marks = [f"{self._taken}:{entry_digest(fields)}" for _id, fields in messages]
        replies = await self._settle_commands(
            keys=[self._key, call_key(self._key), *marks], args=[GROUP, TAKEN_MARK_SECONDS, *ids]
        )
        return [bool(reply) for reply in replies]

    @property
    def key(self) -> str:
        return self._key

    async def backlog(self) -> int:
        """Commands queued and not yet taken by any worker."""
        await self._ensure_group()
        for group in await self._redis.xinfo_groups(self._key):
            if group.get("name") == GROUP:
                return int(group.get("lag") or 0)
        return 0


def entry_fields(entry: dict[str, str]) -> dict[str, str]:
    """A stream entry's command fields: one JSON document under ``entry``, or (written before it was) a field
    each. Whatever else is found (Redis is not trusted) reads as no fields, which no signature verifies."""
    if "entry" not in entry:
        return entry
    try:
        document = json.loads(entry["entry"])
    except ValueError:
        return {}
    if not isinstance(document, dict):
        return {}
    return {str(key): value for key, value in document.items() if isinstance(value, str)}


def entry_digest(fields: dict[str, str]) -> str:
    """What an entry says, as one value: two commands differ at least in their request id and queue time."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:40]


def _parse_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return datetime.now(UTC)
