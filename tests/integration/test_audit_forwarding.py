"""The audit trail forwarded to a SIEM, against local receivers on real TLS: syslog (RFC 5425 octet
counting, RFC 5424 messages) and an HTTP Event Collector. Every entry arrives at least once and in order;
a receiver that refuses or is down gets them again later from the cursor kept in Redis; a new forwarder
(another replica, a restart) resumes there; only the one that leads forwards."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from aiohttp import web
from redis.asyncio import Redis

from bot.adapters.redis.audit import RedisAuditTrail
from bot.adapters.redis.client import connect
from bot.adapters.redis.lifecycle import RedisLeadership
from bot.adapters.redis.store import RedisApprovalStore
from bot.adapters.siem.hec import HecSink
from bot.adapters.siem.syslog import SyslogTlsSink
from bot.domain.ports import AuditSink
from bot.services.audit import AuditForwarder
from tests.support.redis_keys import REDIS_URL


class SyslogReceiver:
    """A TLS syslog server that reads octet-counted frames."""

    def __init__(self, ca: trustme.CA) -> None:
        self.messages: list[bytes] = []
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(self._context)
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = await reader.readuntil(b" ")
                self.messages.append(await reader.readexactly(int(length[:-1])))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class HecReceiver:
    def __init__(self, ca: trustme.CA) -> None:
        self.events: list[dict[str, Any]] = []
        self.refuse = 0  # answer the next ones 503
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1").configure_cert(self._context)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _collect(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Splunk hec-token":
            return web.json_response({"text": "Invalid token", "code": 4}, status=403)
        if self.refuse:
            self.refuse -= 1
            return web.json_response({"text": "Server is busy", "code": 9}, status=503)
        text = await request.text()
        self.events += [json.loads(line) for line in text.splitlines() if line]
        return web.json_response({"text": "Success", "code": 0})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/services/collector/event", self._collect)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"https://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
def ca(tmp_path: Any) -> tuple[trustme.CA, Any]:
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, path


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = connect(REDIS_URL)
    yield redis
    await redis.aclose()


async def entries(store: RedisApprovalStore, count: int, start: int = 0) -> None:
    now = datetime.now(UTC)
    for i in range(start, start + count):
        await store.note(f"req{i:03d}", "reminded", None, f'reminder "{i}" ]', now + timedelta(milliseconds=i))


async def test_every_entry_reaches_both_sinks_once_in_order_and_a_refusal_is_sent_again(
    prefix: str, client: Redis, ca: tuple[trustme.CA, Any]
) -> None:
    authority, ca_file = ca
    syslog, hec = SyslogReceiver(authority), HecReceiver(authority)
    await syslog.start()
    await hec.start()
    store = RedisApprovalStore(client, prefix)
    trail = RedisAuditTrail(client, prefix)
    await entries(store, 250)  # more than one batch

    def forwarder(name: str) -> AuditForwarder:
        sinks: list[AuditSink] = [
            SyslogTlsSink("127.0.0.1", syslog.port, ca_file=ca_file, hostname="bot-1"),
            HecSink(hec.url, "hec-token", ca_file=ca_file),
        ]
        return AuditForwarder(trail, sinks, RedisLeadership(client, prefix, job="audit"), name)

    one, two = forwarder("w1"), forwarder("w2")
    try:
        hec.refuse = 1  # the event collector is busy once
        results = await one.run_once()
        assert await two.run_once() == []  # one leads
        assert {r.sink.split(":")[0]: r.sent for r in results} == {"syslog": 250, "hec": 0}
        assert results[1].problem is not None and "503" in results[1].problem
        await asyncio.sleep(0.2)  # the receiver reads what TLS delivered
        assert len(syslog.messages) == 250
        first = syslog.messages[0].decode()
        assert first.startswith("<110>1 ") and " bot-1 kerberos-bot - reminded [kerberos-bot@32473 " in first
        assert json.loads(first.split("\ufeff", 1)[1])["request"] == "req000"

        again = await one.run_once()  # the refused batch goes again from the cursor
        assert [r.sent for r in again] == [0, 250]
        assert [e["event"]["request"] for e in hec.events] == [f"req{i:03d}" for i in range(250)]
        assert hec.events[0]["sourcetype"] == "kerberos-bot:audit"

        # the leader stops; a new one (a restart, another replica) resumes from the cursors: nothing twice
        await one.close()
        await entries(store, 3, start=250)
        resumed = await two.run_once()
        assert [r.sent for r in resumed] == [3, 3]
        await asyncio.sleep(0.2)
        assert len(syslog.messages) == 253 and len(hec.events) == 253
    finally:
        await two.close()
        await syslog.stop()
        await hec.stop()


async def test_a_receiver_that_is_down_loses_nothing(prefix: str, client: Redis, ca: tuple[trustme.CA, Any]) -> None:
    authority, ca_file = ca
    hec = HecReceiver(authority)
    await hec.start()
    url = hec.url
    await hec.stop()  # down
    store = RedisApprovalStore(client, prefix)
    trail = RedisAuditTrail(client, prefix)
    await entries(store, 5)
    sink = HecSink(url, "hec-token", ca_file=ca_file, timeout=2)
    forwarder = AuditForwarder(trail, [sink], RedisLeadership(client, prefix, job="audit"), "w1")
    try:
        [down] = await forwarder.run_once()
        assert down.sent == 0 and down.problem and "could not be reached" in down.problem
        assert await trail.cursor(sink.name) is None
    finally:
        await forwarder.close()
