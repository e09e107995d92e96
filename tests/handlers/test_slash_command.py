"""Signed slash commands through the bot's real HTTP endpoint, with fakes behind the services."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from kerberos_sandbox.slack_requests import send_slash_command, signed_headers, slash_command_form
from kerberos_sandbox.slack_standin import SlackStandIn

from bot.domain.errors import DirectoryUnavailable, EntraThrottled
from bot.domain.gpo import KdcProxySetting
from bot.services.container import BotServices
from bot.services.status import StatusService
from tests.support.botserver import RunningBot, running_bot
from tests.support.fakes import NOW, FakeDirectory, FakeEntra, FakeKerberosModule, on_prem_state


class Harness:
    def __init__(
        self,
        bot: RunningBot,
        slack: SlackStandIn,
        session: aiohttp.ClientSession,
        directories: dict[str, FakeDirectory],
        module: FakeKerberosModule,
        entra: FakeEntra,
    ) -> None:
        self.bot, self.slack, self.session = bot, slack, session
        self.directories, self.module, self.entra = directories, module, entra

    async def command(self, text: str, **form_args: str):  # type: ignore[no-untyped-def]
        response_url = self.slack.new_response_url()
        form = slash_command_form(text, response_url=response_url, **form_args)
        ack = await send_slash_command(self.session, self.bot.endpoint, self.bot.signing_secret, form)
        return ack, response_url


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    directories = {
        "contoso.test": FakeDirectory(on_prem_state("contoso.test", key_updated_on=NOW - timedelta(days=3))),
        "fabrikam.test": FakeDirectory(on_prem_state("fabrikam.test", with_tdo=False)),
    }
    module = FakeKerberosModule.in_step(directories)
    entra = FakeEntra()
    services = BotServices(
        status=StatusService(directories, module, entra, clock=lambda: NOW),
        kdc_proxy=KdcProxySetting("a1b2c3d4-0000-4000-8000-00000000c0de"),
    )
    async with (
        SlackStandIn() as slack,
        running_bot(services, slack) as bot,
        aiohttp.ClientSession() as session,
    ):
        yield Harness(bot, slack, session, directories, module, entra)


def all_text(message: dict) -> str:  # type: ignore[type-arg]
    import json

    return json.dumps(message)


async def test_status_acks_at_once_then_posts_every_domain_in_channel(harness: Harness) -> None:
    ack, url = await harness.command("status")
    assert ack.status == 200
    assert "Checking" in ack.json()["text"]
    assert ack.json()["response_type"] == "ephemeral"
    [message] = await harness.slack.wait_for_responses(url)
    assert message["response_type"] == "in_channel"
    text = all_text(message)
    assert "Kerberos status: contoso.test" in text and "Kerberos status: fabrikam.test" in text
    assert "KeyVersion" in text and "CloudKeyVersion" in text and "53325" in text
    assert "FIDO sign-in works" in text  # fabrikam has no TDO


async def test_status_of_one_domain_only_reads_that_domain(harness: Harness) -> None:
    ack, url = await harness.command("status FABRIKAM.test")
    assert ack.status == 200
    [message] = await harness.slack.wait_for_responses(url)
    assert "fabrikam.test" in all_text(message) and "contoso.test" not in all_text(message)
    assert harness.directories["contoso.test"].reads == 0


async def test_slow_directory_does_not_delay_the_acknowledgement(harness: Harness) -> None:
    import asyncio

    original = harness.directories["contoso.test"].read_kerberos_objects
    answer = asyncio.Event()  # the DC answers when the test says so: no sleep, no timing

    async def slow():  # type: ignore[no-untyped-def]
        await answer.wait()
        return await original()

    harness.directories["contoso.test"].read_kerberos_objects = slow  # type: ignore[method-assign]
    ack, url = await harness.command("status contoso.test")
    assert ack.status == 200  # acknowledged while the directory has not answered
    assert not harness.slack.responses(url)  # the status was not there yet when Slack got its ack
    answer.set()
    [message] = await harness.slack.wait_for_responses(url)
    assert "contoso.test" in all_text(message)


async def test_unknown_domain_is_refused_naming_the_valid_ones(harness: Harness) -> None:
    ack, url = await harness.command("status evil.example")
    body = ack.json()
    assert ack.status == 200
    assert "Unknown domain `evil.example`" in body["text"]
    assert "contoso.test" in body["text"] and "fabrikam.test" in body["text"]
    assert harness.slack.responses(url) == []


async def test_unknown_subcommand_names_the_valid_ones(harness: Harness) -> None:
    ack, _ = await harness.command("rotat contoso.test")
    text = ack.json()["text"]
    assert "Unknown subcommand `rotat`" in text and "`status`" in text and "`help`" in text


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
async def test_help_lists_subcommands_with_descriptions(harness: Harness, text: str) -> None:
    ack, _ = await harness.command(text)
    body = all_text(ack.json())
    assert "/kerberos status [domain]" in body
    assert "Show the Entra Kerberos server" in body


async def test_directory_failure_is_reported_readably_not_as_a_trace(harness: Harness) -> None:
    harness.directories["contoso.test"].error = DirectoryUnavailable(
        "No domain controller of contoso.test answered (tried ldaps://dc1.contoso.test:636)."
    )
    _, url = await harness.command("status contoso.test")
    [message] = await harness.slack.wait_for_responses(url)
    text = all_text(message)
    assert "Could not read Active Directory" in text and "No domain controller of contoso.test answered" in text
    assert "Traceback" not in text


async def test_entra_throttling_is_reported_with_the_cause(harness: Harness) -> None:
    harness.entra.error = EntraThrottled("Entra ID throttled the request; retry in 30 s.", retry_after_seconds=30)
    _, url = await harness.command("status contoso.test")
    [message] = await harness.slack.wait_for_responses(url)
    assert "Could not read Entra ID: Entra ID throttled the request; retry in 30 s." in all_text(message)


async def test_unexpected_error_gives_a_reference_not_silence(harness: Harness) -> None:
    harness.directories["contoso.test"].read_kerberos_objects = None  # type: ignore[assignment,method-assign]
    harness.module.error = None
    _, url = await harness.command("status contoso.test")
    [message] = await harness.slack.wait_for_responses(url)
    assert "unexpected error (details in the bot's log)" in all_text(message)


async def test_extra_arguments_are_a_usage_error(harness: Harness) -> None:
    ack, _ = await harness.command("status contoso.test fabrikam.test")
    assert "at most one domain" in ack.json()["text"]


async def test_unbalanced_quote_is_explained(harness: Harness) -> None:
    ack, _ = await harness.command('status "contoso.test')
    assert "check the quotes" in ack.json()["text"]


async def _post(harness: Harness, headers: dict[str, str] | None, form: str) -> int:
    async with harness.session.post(
        harness.bot.endpoint,
        data=form.encode(),
        headers=headers or {"Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:
        return resp.status


async def test_unsigned_request_is_rejected_and_does_nothing(harness: Harness) -> None:
    url = harness.slack.new_response_url()
    form = slash_command_form("status", response_url=url)
    assert await _post(harness, None, form) == 401
    assert harness.directories["contoso.test"].reads == 0


async def test_badly_signed_request_is_rejected(harness: Harness) -> None:
    form = slash_command_form("status", response_url=harness.slack.new_response_url())
    headers = signed_headers("not-the-secret", form)
    assert await _post(harness, headers, form) == 401
    tampered = signed_headers(harness.bot.signing_secret, form)
    assert await _post(harness, tampered, form.replace("status", "statux")) == 401
    assert harness.directories["contoso.test"].reads == 0


async def test_stale_request_is_rejected(harness: Harness) -> None:
    form = slash_command_form("status", response_url=harness.slack.new_response_url())
    headers = signed_headers(harness.bot.signing_secret, form, timestamp=int(time.time()) - 6 * 60)
    assert await _post(harness, headers, form) == 401
    assert harness.directories["contoso.test"].reads == 0


async def test_gpo_prints_the_exact_kdc_proxy_value(harness: Harness) -> None:
    ack, _ = await harness.command("gpo")
    text = ack.json()["blocks"][0]["text"]["text"]
    assert "`KERBEROS.MICROSOFTONLINE.COM`" in text
    assert "`<https login.microsoftonline.com:443:a1b2c3d4-0000-4000-8000-00000000c0de/kerberos />`" in text


async def test_changes_are_off_without_an_approval_store(harness: Harness) -> None:
    ack, _ = await harness.command("rotate contoso.test -- x")
    assert "Changes are switched off" in ack.json()["text"]


async def test_status_is_rate_limited_per_person_with_a_clear_message() -> None:
    from bot.services.status import StatusSettings
    from tests.support.fakes import FakeRateLimiter

    directories = {"contoso.test": FakeDirectory(on_prem_state("contoso.test"))}
    module = FakeKerberosModule.in_step(directories)
    settings = StatusSettings(per_user_per_minute=2)
    status = StatusService(
        directories, module, FakeEntra(), settings, clock=lambda: NOW, limiter=FakeRateLimiter(lambda: NOW)
    )
    async with (
        SlackStandIn() as slack,
        running_bot(BotServices(status=status), slack) as bot,
        aiohttp.ClientSession() as session,
    ):
        harness = Harness(bot, slack, session, directories, module, FakeEntra())
        for _ in range(2):
            _, url = await harness.command("status contoso.test")
            assert "Kerberos status" in all_text((await slack.wait_for_responses(url))[0])
        reads = directories["contoso.test"].reads
        _, url = await harness.command("status contoso.test")
        [refused] = await slack.wait_for_responses(url)
        assert "faster than kerberos-bot allows (2 a minute" in all_text(refused)
        assert directories["contoso.test"].reads == reads  # nothing was read for it
        _, url = await harness.command("status contoso.test", user_id="U0BOB")  # another person
        assert "Kerberos status" in all_text((await slack.wait_for_responses(url))[0])
