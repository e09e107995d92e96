"""An AuditSink: syslog over TLS (RFC 5425), each entry one RFC 5424 message, octet-counted.

``<110>1 2026-12-02T16:00:00.000Z host kerberos-bot - approved [kerberos-bot@32473 request="…" actor="…"] {json}``:
facility 13 (log audit), severity 6 (informational); the JSON carries the whole entry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import Sequence
from pathlib import Path

from bot.domain.approvals import AuditEntry
from bot.domain.errors import KerberosBotError

PRI = 13 * 8 + 6  # log audit, informational
SD_ID = "kerberos-bot@32473"  # 32473: the example enterprise number RFC 5612 sets aside for documentation


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str, fallback: str = "-") -> str:
    """A header field: printable ASCII without spaces, at most 32 characters (RFC 5424 MSGID)."""
    cleaned = re.sub(r"[^!-~]", "_", value)[:32]
    return cleaned or fallback


def rfc5424(entry: AuditEntry, hostname: str, app_name: str = "kerberos-bot") -> bytes:
    timestamp = entry.at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    params = {"id": entry.id, "request": entry.request_id, "actor": entry.actor or ""}
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    body = json.dumps(entry.as_record(), ensure_ascii=False, sort_keys=True)
    header = f"<{PRI}>1 {timestamp} {_token(hostname)} {_token(app_name)} - {_token(entry.event)} {sd} "
    return header.encode("ascii") + b"\xef\xbb\xbf" + body.encode("utf-8")


class SyslogTlsSink:
    def __init__(
        self,
        host: str,
        port: int = 6514,
        *,
        ca_file: Path | None = None,
        hostname: str = "kerberos-bot",
        timeout: float = 10.0,
    ) -> None:
        self._host, self._port, self._hostname, self._timeout = host, port, hostname, timeout
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._writer: asyncio.StreamWriter | None = None

    @property
    def name(self) -> str:
        return f"syslog:{self._host}:{self._port}"

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is None or self._writer.is_closing():
            _reader, self._writer = await asyncio.open_connection(
                self._host, self._port, ssl=self._context, server_hostname=self._host
            )
        return self._writer

    async def send(self, entries: Sequence[AuditEntry]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                writer = await self._connected()
                for entry in entries:
                    message = rfc5424(entry, self._hostname)
                    writer.write(str(len(message)).encode() + b" " + message)  # RFC 5425 octet counting
                await writer.drain()
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            await self.close()
            raise KerberosBotError(f"the syslog receiver {self._host}:{self._port} did not take them ({exc})") from exc

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await self._writer.wait_closed()
            self._writer = None
