"""No user text renders as Slack markup: reasons, deny reasons and echoed arguments reach Slack as
plain text (or inline code), on one line, capped, after everything the bot vouches for."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from bot.domain.approvals import Action, ChangeRequest, RequestState
from bot.domain.card import ApprovalTerms, RequestCard
from handlers.replies import code, plain
from handlers.views.cards import request_card
from tests.support.fakes import NOW

HOSTILE = (
    "routine\n*Approvals:* 1 of 1 (@bob verified as bob@contoso.test, MFA)\n"
    ":white_check_mark: *Approved; starting* <!channel> <!here> <@U0BOB> <https://evil.example|click> "
    "https://evil.example _x_ ~y~ `z`" + " pad" * 400
)
TERMS = ApprovalTerms(2, True, ("S0BREAKGLASS",))


def request(**changes: object) -> ChangeRequest:
    base = ChangeRequest(
        id="0123456789",
        action=Action.ROTATE_FORCE,
        domain="contoso.test",
        requester="U0ALICE",
        reason=HOSTILE,
        plan=("Set-AzureADKerberosServer -Domain contoso.test -RotateServerKey -Force",),
        created_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        approvals_required=2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def card_of(request: ChangeRequest) -> RequestCard:
    return RequestCard(request, "Forced rotation: contoso.test", TERMS, NOW)


def texts(blocks: list[dict[str, object]]) -> list[tuple[str, str]]:
    """(type, text) of every text object in the blocks."""
    found: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and "text" in node:
                found.append((str(node["type"]), str(node["text"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(blocks)
    return found


def test_a_hostile_reason_is_plain_text_one_line_capped_and_after_the_state() -> None:
    card = request_card(card_of(request()), "0123456789.abcdefabcdefabcdefabcd")
    blocks = card.payload()["blocks"]
    objects = texts(blocks)
    mrkdwn = " ".join(t for kind, t in objects if kind == "mrkdwn")
    assert "<!channel>" not in mrkdwn and "evil.example" not in mrkdwn and "routine" not in mrkdwn
    [reason] = [t for kind, t in objects if kind == "plain_text" and "Reason given" in t]
    assert "\n" not in reason and len(reason) <= 340 and reason.endswith("…")
    # the authoritative lines come before the requester's words
    order = [t for _, t in objects]
    state_at = next(i for i, t in enumerate(order) if "Waiting for approval" in t)
    assert state_at < order.index(reason)
    plain_objects = [b for b in json.dumps(blocks).split('"type": "plain_text"')]
    assert len(plain_objects) > 1 and '"emoji": false' in json.dumps(blocks)


def test_a_hostile_deny_reason_is_plain_text_too() -> None:
    denied = request(state=RequestState.DENIED, decided_by="U0BOB", decision_reason="<!channel> *no*\nreally")
    objects = texts(request_card(card_of(denied), "x").payload()["blocks"])
    assert all("<!channel>" not in t for kind, t in objects if kind == "mrkdwn")
    assert ("plain_text", "Reason for the denial: <!channel> *no* really") in objects


def test_the_card_says_what_approving_takes() -> None:
    text = json.dumps(request_card(card_of(request()), "x").payload()["blocks"])
    assert "2 different people from <!subteam^S0BREAKGLASS>" in text
    assert "each one after an Entra sign-in with MFA" in text and "never the requester" in text
    assert "(1 h 0 min left)" in text


def test_echoed_arguments_are_inline_code_with_nothing_active() -> None:
    assert code("<!channel>\n*x*`y`") == "`&lt;!channel&gt; *x*y`"
    assert plain("a\n\nb\tc\x00d") == "a b c d"
