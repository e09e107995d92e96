"""Structured logs: one JSON object per line, with the request id and the Slack user on every line.

The ids live in context variables set where a Slack request enters (``bot.entrypoints.web``) and where the
user is known (the listeners); asyncio copies them into every task started from there.
"""

from __future__ import annotations

import json
import logging
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
SLACK_USER: ContextVar[str] = ContextVar("slack_user", default="-")


def new_request_id() -> str:
    value = uuid.uuid4().hex[:12]
    REQUEST_ID.set(value)
    return value


def set_user(user_id: str) -> None:
    SLACK_USER.set(user_id or "-")


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
        return _LINE.encode(event)


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    # neither format shows where a line was logged from, nor the thread or process: the logging docs'
    # "Optimization" settings spare every line the frame walk and lookups (each command logs one)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; the bot logs what matters itself
    logging.getLogger("httpx").setLevel(logging.WARNING)
