"""What the docs say the defaults are is what the configuration schema gives: a default changed in the code
fails here until the docs say it too."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import ACTION_KEYS, ApprovalsConfig, ChangesConfig

DOCS = Path(__file__).parents[2] / "docs"


def test_the_documented_approvals_and_verified_defaults_are_the_schemas() -> None:
    text = (DOCS / "approvals.md").read_text()
    counts = re.search(r"# defaults: (.+)", text)
    verified = re.search(r"# default: true for ([a-z_, ]+)", text)
    assert counts is not None and verified is not None, "docs/approvals.md's defaults comments moved"
    documented = {key: int(n) for key, n in re.findall(r"([a-z_]+) (\d+)", counts.group(1))}
    schema = ApprovalsConfig()
    assert documented == {key: schema.required(key) for key in ACTION_KEYS}
    assert {k.strip() for k in verified.group(1).split(",")} == {k for k in ACTION_KEYS if schema.verified(k)}


def test_the_documented_change_settings_defaults_are_the_schemas() -> None:
    text = (DOCS / "lifecycle.md").read_text()
    assert f"`[changes] max_freeze_days` ({ChangesConfig().max_freeze_days} by default)" in text
