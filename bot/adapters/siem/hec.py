"""An AuditSink: an HTTP JSON endpoint in the shape of Splunk's HTTP Event Collector.

``POST <url>/services/collector/event`` with ``Authorization: Splunk <token>`` and one JSON object per
entry (``{"time": …, "host": …, "source": "kerberos-bot", "sourcetype": "kerberos-bot:audit", "event": {…}}``);
the batch counts as taken only on HTTP 200 with ``"code": 0``."""

from __future__ import annotations

import json
import ssl
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bot.domain.approvals import AuditEntry
from bot.domain.errors import KerberosBotError

PATH = "/services/collector/event"


class HecSink:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_file: Path | None = None,
        index: str | None = None,
        host: str = "kerberos-bot",
        timeout: float = 10.0,
    ) -> None:
        self._url = url.rstrip("/") + PATH
        self._token = token
        self._index = index
        self._host = host
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._session: aiohttp.ClientSession | None = None

    @property
    def name(self) -> str:
        return f"hec:{self._url}"

    def _body(self, entries: Sequence[AuditEntry]) -> bytes:
        events = []
        for entry in entries:
            event = {
                "time": round(entry.at.timestamp(), 3),
                "host": self._host,
                "source": "kerberos-bot",
                "sourcetype": "kerberos-bot:audit",
                "event": entry.as_record(),
            }
            if self._index:
                event["index"] = self._index
            events.append(json.dumps(event, ensure_ascii=False, sort_keys=True))
        return "\n".join(events).encode("utf-8")

    async def send(self, entries: Sequence[AuditEntry]) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Splunk {self._token}", "Content-Type": "application/json"}
        try:
            async with self._session.post(self._url, data=self._body(entries), headers=headers, ssl=self._ssl) as r:
                text = await r.text()
                try:
                    code = json.loads(text).get("code") if text else None
                except ValueError:
                    code = None
                if r.status != 200 or code != 0:
                    raise KerberosBotError(f"the event collector answered HTTP {r.status}: {text[:200]}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KerberosBotError(f"the event collector could not be reached ({exc})") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
