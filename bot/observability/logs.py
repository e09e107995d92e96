"""Structured logs: one JSON object per line, with the request id and the Slack user on every line.

The ids live in context variables set where a Slack request enters (``bot.entrypoints.web``) and where the
user is known (the listeners); asyncio copies them into every task started from there.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
SLACK_USER: ContextVar[str] = ContextVar("slack_user", default="-")


def new_request_id() -> str:
    value = os.urandom(6).hex()  # 48 random bits, as a uuid4's first twelve hex digits, without the object
    REQUEST_ID.set(value)
    return value


def set_user(user_id: str) -> None:
    SLACK_USER.set(user_id or "-")


# what could end a line or paint a terminal: C0 and C1 controls, DEL, and Unicode's line and paragraph separators
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNESCAPED_BY_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")
# json.dumps with options other than its defaults builds a new encoder for every call: one for every line
_LINE = json.JSONEncoder(ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": REQUEST_ID.get(),
            "slack_user": SLACK_USER.get(),
        }
        if record.exc_info:
            event["exc"] = self.formatException(record.exc_info)
        line = _LINE.encode(event)
        if line.isascii() and "\x7f" not in line:  # nearly every line, and a quick look
            return line
        # JSON escapes C0 controls itself; DEL, C1 and Unicode's line separators it leaves as they are
        return _UNESCAPED_BY_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", line)


def escape_controls(text: str) -> str:
    """``text`` with every control character written as its Python escape (a newline as ``\\n``)."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """``LOG_FORMAT=text``: a line a person reads, one per event. What a message carries (a request id, a reason,
    an error's words: text people typed, some of it) cannot start a line of its own or forge one: its control
    characters are escaped, and a traceback's lines are marked as the event's."""

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name} "
            f"[{REQUEST_ID.get()} {SLACK_USER.get()}] {escape_controls(record.getMessage())}"
        )
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "".join(f"\n    | {escape_controls(part)}" for part in trace.splitlines())
        return line


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    # neither format shows where a line was logged from, nor the thread or process: the logging docs'
    # "Optimization" settings spare every line the frame walk and lookups (each command logs one)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the bot logs what matters itself
    logging.getLogger("httpx").setLevel(logging.WARNING)
