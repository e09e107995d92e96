"""The core names the commands it points people to apart from any chat (``bot.domain.hints``); each
surface writes them as its people type them. No message of the core carries Slack's `/kerberos …`."""

from __future__ import annotations

import ast
from pathlib import Path

from kerberos_sandbox.render import render_card

from bot.domain.approvals import Action, RequestState
from bot.domain.card import ApprovalTerms, RequestCard
from bot.domain.hints import hint, spelled
from handlers.replies import escape, typed
from tests.support.fakes import NOW
from tests.support.requests import a_request

ROOT = Path(__file__).resolve().parents[2]
CORE = ("bot/domain", "bot/services", "bot/actions", "bot/adapters", "bot/workers")


def test_each_surface_spells_the_cores_hints_its_own_way() -> None:
    text = f"Run {hint('status contoso.test')} & check <here>."
    assert escape(text) == "Run `/kerberos status contoso.test` &amp; check &lt;here&gt;."  # Slack's mrkdwn
    assert typed(text) == "Run /kerberos status contoso.test & check <here>."  # Slack's plain text
    assert spelled(text, lambda c: f"kerberos-bot {c}") == "Run kerberos-bot status contoso.test & check <here>."
    request = a_request(action=Action.REMOVE_TDO, state=RequestState.FAILED, outcome=text)
    card = RequestCard(request, "Remove the trusted domain object: contoso.test", ApprovalTerms(1, False, ()), NOW)
    assert "Run /kerberos status contoso.test & check <here>." in render_card(card)  # the console


def test_no_string_of_the_core_writes_a_slack_command() -> None:
    found = []
    for folder in CORE:
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "hints.py":  # its docstring shows what Slack writes
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and "`/kerberos" in node.value:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"use bot.domain.hints.hint(...) instead: {found}"
