"""The demo console: play the people of a Slack channel against the sandbox.

    /kerberos <text>           type a slash command as the current user
    as <name>                  become alice, bob, carol, dave or mallory (bob, carol, dave approve)
    approve [<id>|latest]      click Approve on a request card
    deny [<id>|latest] <why>   click Deny and give the reason in the dialog
    wait [<id>|latest]         wait until the request is carried out, then show what Slack shows (at
                               once when it still needs approvals: only people move it then)
    signin [--no-mfa] [--as <upn>] [--password <p>]
                               complete the Entra sign-in the bot asked you for: open its link, type
                               your password and the MFA code at the stand-in's page, land on the
                               bot's page (a device code, with method = "device_code"); --no-mfa
                               signs in without MFA, --as as another account
    decline                    cancel that sign-in instead
    run [<id>|latest]          be the operator the card names for an approved change (remove-tdo in the
                               demo): run its command at the management host, signed in to Entra as
                               yourself, say `/kerberos done`, and see what the bot verified (run it as
                               someone else to see that reported too; or, as another operator,
                               `/kerberos take <id>` first, then `run` as yourself)
    home                       open your kerberos-bot home tab (App Home)
    submit <domain> [--force] [--twice] [--ticket <T>] [--action <a>] -- <reason>
                               fill in and submit the request form the bot opened for you
                               (type `/kerberos rotate` without arguments, or remove-tdo, setup,
                               remove-all, to open it)
    help, quit                 (end of input quits too)

Lines come from standard input, so a session can be scripted: ``printf '...' | kerberos-bot demo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

from bot.domain.approvals import ChangeRequest, RequestState
from bot.domain.operators import handover_of
from handlers.boundary import IN_FLIGHT
from handlers.views.request_form import REQUEST_FORM
from kerberos_sandbox.console_sign_in import SignInPlayer
from kerberos_sandbox.operator_host import run_at_the_host
from kerberos_sandbox.render import render_card, render_message
from kerberos_sandbox.sandbox import SANDBOX_PEOPLE, Sandbox
from kerberos_sandbox.slack_requests import block_actions_payload, view_submission_payload
from kerberos_sandbox.slack_standin import RecordedCall

PEOPLE = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE", "mallory": "U0MALLORY"}
NAMES = {user: name for name, user in PEOPLE.items()}
CHANNEL = "C0PLATFORM"
SETTLE_TICK = 0.05  # seconds between looks at the bot's listeners
PENDING_GRACE_TICKS = 20  # `wait` on a request that needs approvals: 2 s for one still being recorded, then back
_CARD_ID = re.compile(r"Request\*\s*`([0-9a-f]{6,32})`")  # the request a Slack card is of


def _view(body: dict[str, Any]) -> dict[str, Any]:
    view = body.get("view") or {}
    parsed: dict[str, Any] = json.loads(view) if isinstance(view, str) else dict(view)
    return parsed


def _blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = body.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


class Console:
    def __init__(self, box: Sandbox, out: TextIO = sys.stdout) -> None:
        self.box = box
        self.out = out
        self.user = "alice"
        self._seen = len(box.slack.calls)
        self._latest_request: str | None = None
        self._sign_ins = SignInPlayer(box, self.say)
        self._forms: dict[str, dict[str, Any]] = {}  # Slack user -> the request form the bot opened for them
        self._opened_by: str = "alice"  # who the last views.open was for (the console's current user)
        self._cards_shown: dict[str, tuple[str, str]] = {}  # request id -> its card as last shown (once each)

    def say(self, text: str) -> None:
        print(re.sub(r"<@(U\w+)>", lambda m: "@" + NAMES.get(m.group(1), m.group(1)), text), file=self.out, flush=True)

    async def show_new_messages(self) -> None:
        """Everything the bot posted since last time, as the channel would show it."""
        calls = self.box.slack.calls[self._seen :]
        self._seen = len(self.box.slack.calls)
        for call in calls:
            body = call.body
            if call.kind == "response_url":
                who = "everyone" if body.get("response_type") == "in_channel" else f"only @{self.user}"
                self.say(f"\n--- kerberos-bot ({who} sees this) ---\n{render_message(body)}")
            elif call.name == "chat.postMessage" and str(body.get("channel", "")).startswith("D"):
                user = "U" + str(body["channel"])[1:]
                message = {"text": body.get("text"), "blocks": _blocks(body)}
                self.say(
                    f"\n--- kerberos-bot messages @{NAMES.get(user, user)} directly ---\n{render_message(message)}"
                )
            elif call.name == "views.publish":
                user = str(body.get("user_id"))
                view = _view(body)
                self.say(f"\n--- @{NAMES.get(user, user)}'s kerberos-bot home tab ---\n{render_message(view)}")
            elif call.name == "chat.postMessage" and body.get("thread_ts"):
                self.say(f"\n    [thread] kerberos-bot: {render_message({'text': body.get('text', '')})}")
            elif call.name in ("chat.postMessage", "chat.update"):
                verb = "posts" if call.name == "chat.postMessage" else "updates its card"
                blocks = _blocks(body)
                for block in blocks:
                    if block.get("type") == "actions":
                        self._latest_request = str(block["elements"][0]["value"]).split(".")[0]  # "<id>.<MAC>"
                card = await self._card(blocks)
                if card is not None and card == self._cards_shown.get(card[0]):
                    continue  # several updates at once: the card as it is now, once
                if card is not None:
                    self._cards_shown[card[0]] = card
                shown = card[1] if card else render_message({"text": body.get("text"), "blocks": blocks})
                self.say(f"\n--- kerberos-bot {verb} in #platform ---\n{shown}")
            elif call.name == "chat.postEphemeral":
                name = NAMES.get(str(body.get("user")), body.get("user"))
                blocks = _blocks(body)
                message = {"text": body.get("text"), "blocks": blocks}
                self.say(f"\n--- kerberos-bot (only @{name} sees this) ---\n{render_message(message)}")
                self._sign_ins.note_asked(str(body.get("user")), str(body.get("text")), blocks)
            elif call.name == "views.open":
                view = _view(body)
                if view.get("callback_id") == REQUEST_FORM:
                    self._forms[PEOPLE[self.user]] = view
                    self.say(f"\n--- a form opens for @{self.user}: Kerberos change ---\n{render_message(view)}")
                else:
                    self.say("\n--- a dialog opens: 'Deny the request' asks why ---")

    async def _card(self, blocks: list[dict[str, Any]]) -> tuple[str, str] | None:
        """(request id, its card) drawn from the engine's card model, not from Slack's blocks; None when the
        message is not a request's card."""
        changes = self.box.components.services.changes
        named = _CARD_ID.search(json.dumps(blocks))
        request = await changes.queries.get(named.group(1)) if changes and named else None
        if changes is None or request is None:
            return None
        return request.id, render_card(changes.queries.card(request), NAMES)

    def _request_id(self, word: str | None) -> str | None:
        if word in (None, "latest"):
            return self._latest_request
        return word

    async def _button(self, action_id: str, request_id: str) -> bool:
        changes = self.box.components.services.changes
        request = await changes.queries.get(request_id) if changes else None
        if changes is None or request is None or request.card is None:
            self.say(f"(no request card {request_id!r})")
            return False
        payload = block_actions_payload(
            user_id=PEOPLE[self.user],
            action_id=action_id,
            value=changes.decisions.button_value(request),  # what the card's buttons carry
            channel_id=CHANNEL,
            message_ts=request.card,
        )
        await self.box.interact(payload)
        return True

    async def _settle(self, seconds: float = 0.5, *, listeners_only: bool = True) -> None:
        """Until the bot's listeners have done what they carry on with after acknowledging (the bot acknowledges
        first, then posts), at most ``seconds``; then what it posted. ``listeners_only=False``: the whole
        ``seconds``, for what the bot does outside a listener (a sign-in it polls for, the sign-in page's)."""
        if listeners_only:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            await asyncio.sleep(SETTLE_TICK)
            while IN_FLIGHT.count and loop.time() < deadline:  # noqa: ASYNC110  # a count the listeners keep
                await asyncio.sleep(SETTLE_TICK)
        else:
            await asyncio.sleep(seconds)
        await self.show_new_messages()

    async def handle(self, line: str) -> bool:
        """One line of input; False to stop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        if word in ("quit", "exit"):
            return False
        if word == "help":
            self.say(__doc__ or "")
        elif word == "as":
            name = rest.strip().lower()
            if name not in PEOPLE:
                self.say(f"(who? one of {', '.join(PEOPLE)})")
            else:
                self.user = name
                self.say(f"(you are now @{name})")
        elif word == "/kerberos":
            self.say(f"\n@{self.user} in #platform:  /kerberos {rest}")
            ack, _ = await self.box.command(rest, user_id=PEOPLE[self.user], wait=False)
            self.say(f"--- acknowledged in {ack.seconds * 1000:.0f} ms (only @{self.user} sees this) ---")
            self.say(render_message(ack.json()) if ack.body else "(acknowledged)")
            await self._settle(1.0)
        elif word in ("approve", "deny"):
            args = rest.split(maxsplit=1)
            request_id = self._request_id(args[0] if args else None)
            if request_id is None:
                self.say("(no request yet)")
                return True
            self.say(f"\n@{self.user} clicks {word.capitalize()} on request {request_id}")
            if word == "approve":
                await self._button("kerberos_approve", request_id)
            else:
                await self._deny(request_id, args[1] if len(args) > 1 else "no reason given")
            await self._settle()
        elif word in ("signin", "decline"):
            settle = await self._sign_ins.play(self.user, PEOPLE[self.user], word, rest.split())
            if settle is not None:
                await self._settle(settle, listeners_only=False)
        elif word == "wait":
            await self._wait(self._request_id(rest.strip() or None))
        elif word == "run":
            await self._run_as_operator(self._request_id(rest.strip() or None))
        elif word == "home":
            self.say(f"\n@{self.user} opens the kerberos-bot home tab")
            await self.box.event({"type": "app_home_opened", "user": PEOPLE[self.user], "tab": "home"})
            await self._settle()
        elif word == "submit":
            await self._submit(rest)
            await self._settle(1.0)
        else:
            self.say("(unknown; type help)")
        return True

    async def _submit(self, rest: str) -> None:
        form = self._forms.get(PEOPLE[self.user])
        if form is None:
            self.say("(no form is open for you; type `/kerberos rotate` without arguments first)")
            return
        head, _, reason = rest.partition(" -- ")
        words = head.split()
        action = next(b["element"].get("initial_option") or {} for b in form["blocks"] if b.get("block_id") == "action")
        chosen = action.get("value", "rotate")
        ticket = ""
        if "--action" in words[:-1]:
            chosen = words[words.index("--action") + 1]
        if "--ticket" in words[:-1]:
            ticket = words[words.index("--ticket") + 1]
        domain = next((w for w in words if not w.startswith("--") and w not in (chosen, ticket)), "")
        options = [{"value": o} for o in ("force", "twice") if f"--{o}" in words]
        values = {
            "action": {"action": {"type": "static_select", "selected_option": {"value": chosen}}},
            "domain": {"domain": {"type": "static_select", "selected_option": {"value": domain}}},
            "reason": {"reason": {"type": "plain_text_input", "value": reason.strip()}},
            "ticket": {"ticket": {"type": "plain_text_input", "value": ticket or None}},
            "options": {"options": {"type": "checkboxes", "selected_options": options}},
            "tlns": {"tlns": {"type": "plain_text_input", "value": None}},
            "channel": {"channel": {"type": "conversations_select", "selected_conversation": CHANNEL}},
        }
        self.say(f"\n@{self.user} submits the form: {chosen} {domain} {' '.join(words[1:])} -- {reason.strip()}")
        ack = await self.box.interact(
            view_submission_payload(
                user_id=PEOPLE[self.user],
                callback_id=REQUEST_FORM,
                private_metadata=str(form.get("private_metadata", "")),
                values=values,
            )
        )
        answer = ack.json()
        if answer.get("response_action") == "errors":
            for field, text in answer.get("errors", {}).items():
                self.say(f"--- the form shows under {field}: {text} ---")
        else:
            self._forms.pop(PEOPLE[self.user], None)
            self.say("--- the form closes ---")

    async def _deny(self, request_id: str, reason: str) -> None:
        if not await self._button("kerberos_deny", request_id):
            return
        await asyncio.sleep(0.3)
        dialogs = self.box.slack.api_calls("views.open")
        if not dialogs:
            self.say("(no dialog opened)")
            return
        view = dialogs[-1].body["view"]
        view = json.loads(view) if isinstance(view, str) else view
        self.say(f"@{self.user} types the reason: {reason}")
        await self.box.interact(
            view_submission_payload(
                user_id=PEOPLE[self.user],
                callback_id=view["callback_id"],
                private_metadata=view["private_metadata"],
                values={"reason": {"reason": {"type": "plain_text_input", "value": reason}}},
            )
        )

    async def _wait(self, request_id: str | None, timeout: float = 60.0) -> None:
        """Until the request is finished (at most ``timeout``), or at once when it still needs approvals."""
        changes = self.box.components.services.changes
        if request_id is None or changes is None:
            self.say("(no request to wait for)")
            return
        for tick in range(int(timeout * 10)):
            request = await changes.queries.get(request_id)
            if request is not None and request.state.is_final:
                break
            if request is not None and request.state == RequestState.PENDING and tick >= PENDING_GRACE_TICKS:
                break  # it waits for people to approve: waiting here would not move it
            await asyncio.sleep(0.1)
        request = await changes.queries.get(request_id)
        if request is not None and request.state == RequestState.SUCCEEDED and "KeyVersion" in (request.outcome or ""):
            await self._key_followed(request)
        await self.show_new_messages()
        state = request.state.value if request else "unknown"
        self.say(f"(request {request_id} is {state})")
        if request is not None and request.state == RequestState.PENDING:
            self.say("(still waiting for approvals)")

    async def _run_as_operator(self, request_id: str | None) -> None:
        changes = self.box.components.services.changes
        request = await changes.queries.get(request_id) if changes and request_id else None
        handover = handover_of(request) if request is not None else None
        if request is None or handover is None or request.state != RequestState.WITH_OPERATOR:
            self.say("(no approved change is waiting for an operator)")
            return
        upn = SANDBOX_PEOPLE[PEOPLE[self.user]]
        self.say(f"\n@{self.user} at the management host, signed in to Entra as {upn} (MFA):\n  PS> {handover.command}")
        try:
            await run_at_the_host(self.box, handover.command, request.domain, upn)
        except Exception as exc:  # the module's own refusal, as PowerShell would print it
            self.say(f"  {type(exc).__name__}: {exc}")
        await self.handle(f"/kerberos done {request.id}")
        await self._wait(request.id)

    async def _key_followed(self, request: ChangeRequest, timeout: float = 30.0) -> None:
        """A new key: wait for the thread to say that every DC holds it (or which lag), as people would."""

        def followed(call: RecordedCall) -> bool:
            text = str(call.body.get("text", ""))
            return call.body.get("thread_ts") == request.card and (
                "holds the new key" in text or "still show an older key" in text
            )

        with contextlib.suppress(TimeoutError):
            await self.box.slack.wait_for_api("chat.postMessage", where=followed, timeout=timeout)

    async def run(self, read_line: Callable[[], str]) -> None:
        await self.show_new_messages()
        self.say("\nType /kerberos commands, 'as <name>' to switch user, 'approve latest', 'help'; end with 'quit'.")
        loop = asyncio.get_running_loop()
        while True:
            self.say(
                f"@{self.user}> ",
            )
            line = await loop.run_in_executor(None, read_line)
            if not line:  # end of input
                return
            if not await self.handle(line):
                return
