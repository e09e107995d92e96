"""The Slack app manifest declares what the code registers, and only the scopes it uses."""

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.bootstrap.adapters import slack_client
from bot.entrypoints.web import EVENTS_PATH
from bot.services.container import BotServices
from bot.services.home import HomeService
from bot.services.status import StatusService
from handlers.app import build_bolt_app
from handlers.home import SlackHome
from handlers.router import COMMAND
from tests.support.engine import engine_on_fakes
from tests.support.fake_approvals import FakeApprovalStore
from tests.support.fakes import FakeDirectory, FakeEntra, FakeGroups, FakeKerberosModule, on_prem_state

MANIFEST = json.loads((Path(__file__).parents[2] / "slack" / "manifest.json").read_text())


def registered_listeners(*, with_home: bool = False) -> list[str]:
    """The names of the Bolt listeners the real app registers, with the approval store switched on (and the
    home page, ``with_home``)."""
    directories = {"contoso.test": FakeDirectory(on_prem_state())}
    module = FakeKerberosModule.in_step(directories)
    changes = engine_on_fakes(
        store=FakeApprovalStore(),
        module=module,
        directories=directories,
        groups=FakeGroups(),
        policies={},
        clock=lambda: datetime.now(UTC),
    )
    services = BotServices(status=StatusService(directories, module, FakeEntra()), changes=changes)
    client = slack_client("xoxb-x", "http://127.0.0.1:9/api/")
    home = SlackHome(client, HomeService(changes), changes) if with_home else None
    app = build_bolt_app(signing_secret="s", client=client, services=services, home=home)
    return [listener.ack_function.__name__ for listener in app._async_listeners]


def test_the_command_the_code_registers_is_declared() -> None:
    commands = [c["command"] for c in MANIFEST["features"]["slash_commands"]]
    assert commands == [COMMAND]
    assert MANIFEST["features"]["slash_commands"][0]["url"].endswith(EVENTS_PATH)


def test_interactivity_is_on_because_buttons_and_a_dialog_are_registered() -> None:
    listeners = registered_listeners()
    assert {"kerberos", "approve", "deny", "deny_reason"} <= set(listeners)
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True
    assert MANIFEST["settings"]["interactivity"]["request_url"].endswith(EVENTS_PATH)


def test_the_request_shortcut_the_code_registers_is_declared() -> None:
    from handlers.views.request_form import REQUEST_SHORTCUT

    assert {"request_change", "request_form_submitted"} <= set(registered_listeners())
    [shortcut] = MANIFEST["features"]["shortcuts"]
    assert shortcut["type"] == "global" and shortcut["callback_id"] == REQUEST_SHORTCUT
    assert len(shortcut["description"]) <= 80 and len(shortcut["name"]) <= 40


def test_the_home_page_and_its_event_are_declared() -> None:
    listeners = registered_listeners(with_home=True)
    assert {"home_opened", "home_approve", "home_deny", "home_dms"} <= set(listeners)
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    events = MANIFEST["settings"]["event_subscriptions"]
    assert events["bot_events"] == ["app_home_opened"] and events["request_url"].endswith(EVENTS_PATH)


def test_least_privilege_scopes() -> None:
    # im:write: the requesters' direct messages (conversations.open)
    # users:read(.email): verified approvals match an approver's Slack profile e-mail to their Entra UPN
    assert sorted(MANIFEST["oauth_config"]["scopes"]["bot"]) == [
        "chat:write",
        "commands",
        "im:write",
        "usergroups:read",
        "users:read",
        "users:read.email",
    ]


def test_scopes_cover_every_web_api_method_the_code_calls() -> None:
    needs = {
        "chat_postMessage": "chat:write",
        "chat_update": "chat:write",
        "chat_postEphemeral": "chat:write",
        "usergroups_users_list": "usergroups:read",
        "users_info": "users:read.email",
        "bots_info": "users:read",  # the bot's app id: the origin of the requests it files itself
        "views_open": None,
        "views_publish": None,  # the home page (app_home_opened needs no scope)
        "conversations_open": "im:write",  # the requester's direct messages
        "chat_getPermalink": None,  # the card's link (Slack: no scope required)
    }
    root = Path(__file__).parents[2]
    slack_code = [*(root / "handlers").rglob("*.py"), *(root / "bot" / "adapters" / "slack").rglob("*.py")]
    source = "".join(p.read_text() for p in slack_code)
    called = {m for m in needs if f".{m}(" in source}
    assert called == set(needs)
    assert {needs[m] for m in called if needs[m]} <= set(MANIFEST["oauth_config"]["scopes"]["bot"])


def test_the_slash_commands_description_and_usage_hint_come_from_the_discovered_subcommands() -> None:
    from handlers.router import SUBCOMMANDS, manifest_command

    declared = MANIFEST["features"]["slash_commands"][0]
    generated = manifest_command()
    assert {k: declared[k] for k in generated} == generated, "run: python -m handlers.router, copy into the manifest"
    assert len(generated["usage_hint"]) <= 1000  # Slack's limit
    names = [s.name for s in SUBCOMMANDS]
    assert names[0] == "status" and names[-1] == "help" and len(names) == len(set(names))


def test_the_app_starts_without_a_warning_where_slack_bot_token_is_set(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # how the bot is deployed: Bolt reads SLACK_BOT_TOKEN itself and warns that the client's token wins
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    with caplog.at_level(logging.WARNING):
        registered_listeners()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
