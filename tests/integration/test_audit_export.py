"""`kerberos-bot audit export` on the real Redis: the entries of a time range, as JSON lines or CSV, to
standard output or a file; a spreadsheet never runs a person's words as a formula; a bad range is said."""

from __future__ import annotations

import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.adapters.redis.client import connect
from bot.adapters.redis.store import RedisApprovalStore
from bot.entrypoints.cli import main
from tests.support.redis_keys import REDIS_URL

DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def _write(prefix: str) -> None:
    client = connect(REDIS_URL)
    store = RedisApprovalStore(client, prefix)
    await store.note("r1", "nudged", "U0ALICE", '=HYPERLINK("http://evil")', DAY)
    await store.note("r2", "reminded", None, "reminder 1 of 2", DAY + timedelta(hours=1))
    await store.note("r3", "reminded", None, "tomorrow", DAY + timedelta(days=1))
    await client.aclose()


def test_the_export_writes_a_days_entries_as_json_lines_and_as_csv(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    asyncio.run(_write(prefix))
    window = ["--since", "2026-11-20", "--until", "2026-11-21", "--prefix", prefix]
    assert main(["audit", "export", *window]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["request"], e["event"], e["actor"]) for e in lines] == [
        ("r1", "nudged", "U0ALICE"),
        ("r2", "reminded", None),
    ]
    assert lines[0]["at"] == "2026-11-20T09:00:00+00:00"

    out = tmp_path / "audit.csv"
    assert main(["audit", "export", *window, "--format", "csv", "--output", str(out)]) == 0
    with out.open(encoding="utf-8") as written:
        rows = list(csv.DictReader(written))
    assert [r["request"] for r in rows] == ["r1", "r2"]
    assert rows[0]["detail"].startswith("'=HYPERLINK")  # text, never a formula

    assert main(["audit", "export", "--since", "2026-11-21", "--until", "2026-11-20", "--prefix", prefix]) != 0
    assert "--until must be after --since" in capsys.readouterr().err
