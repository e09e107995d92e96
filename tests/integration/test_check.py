"""`kerberos-bot check` against the sandbox: all good, then each failure mode with its own message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kerberos_sandbox.entra_standin import GRAPH_ROLES
from kerberos_sandbox.redis_server import free_port
from kerberos_sandbox.samba_dc import ADMIN_PASSWORD
from kerberos_sandbox.sandbox import Sandbox, sandbox
from pydantic import SecretStr

from bot.config import BotConfig, Settings, load_bot_config
from bot.entrypoints.check import CheckResult, run_checks
from tests.support.samba import sandbox_domains

pytestmark = pytest.mark.samba


@pytest.fixture(scope="module")
async def box(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    async with sandbox(sandbox_domains(), workdir=Path(tmp_path_factory.mktemp("sandbox"))) as running:
        yield running


def settings_for(box: Sandbox, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "slack_bot_token": SecretStr(box.slack.bot_token),
        "slack_api_url": box.slack.api_url,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def config_with(box: Sandbox, tmp_path: Path, old: str, new: str) -> BotConfig:
    path = tmp_path / "changed.toml"
    text = box.config_path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return load_bot_config(path)


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


async def test_everything_reachable(box: Sandbox) -> None:
    results = by_name(await run_checks(settings_for(box), load_bot_config(box.config_path)))
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]
    assert set(results) == {"redis", "ldap contoso.test", "ldap fabrikam.test", "entra", "slack", "approver sign-in"}
    verification = results["approver sign-in"].detail
    assert "approver group 'Kerberos approvers' readable" in verification
    assert "browser sign-in page opens" in verification and "/auth/callback" in verification
    assert "rotate_force, remove_tdo, setup, remove_all" in verification
    assert "Kerberos server ID" in results["ldap contoso.test"].detail
    assert "cloud trust present" in results["ldap contoso.test"].detail


async def test_each_failure_has_its_own_message_and_no_secret(box: Sandbox, tmp_path: Path) -> None:
    port = free_port()
    redis_down = by_name(
        await run_checks(
            settings_for(box, redis_url=f"redis://:hunter2@127.0.0.1:{port}/0"), load_bot_config(box.config_path)
        )
    )["redis"]
    assert not redis_down.ok and "did not answer" in redis_down.detail and "hunter2" not in redis_down.line()

    bad_password = config_with(box, tmp_path, f'value = "{ADMIN_PASSWORD}"', 'value = "Wr0ng-passw0rd!"')
    wrong = by_name(await run_checks(settings_for(box), bad_password))["ldap contoso.test"]
    assert not wrong.ok and "refused the bind" in wrong.detail and "Wr0ng" not in wrong.line()

    contoso = box.domains[0].address
    dc_down = config_with(box, tmp_path, f'"ldaps://{contoso}:636"', f'"ldaps://{contoso}:{port}"')
    down = by_name(await run_checks(settings_for(box), dc_down))["ldap contoso.test"]
    assert not down.ok and "No domain controller of contoso.test answered" in down.detail

    bad_secret = config_with(
        box,
        tmp_path,
        f'client_secret = {{ value = "{box.entra.client_secret}" }}',
        'client_secret = { value = "not-the-secret" }',
    )
    entra = by_name(await run_checks(settings_for(box), bad_secret))["entra"]
    assert not entra.ok and "AADSTS7000215" in entra.detail and "not-the-secret" not in entra.line()

    slack = by_name(
        await run_checks(settings_for(box, slack_bot_token=SecretStr("xoxb-wrong")), load_bot_config(box.config_path))
    )["slack"]
    assert not slack.ok and "invalid_auth" in slack.detail and "xoxb-wrong" not in slack.line()

    messages = {redis_down.detail, wrong.detail, down.detail, entra.detail, slack.detail}
    assert len(messages) == 5


async def test_cli_exit_code_and_output(box: Sandbox) -> None:
    import asyncio
    import os
    import sys

    env = {
        **os.environ,
        "KERBEROS_BOT_CONFIG": str(box.config_path),
        "SLACK_BOT_TOKEN": "xoxb-wrong",
        "SLACK_API_URL": box.slack.api_url,
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", env=env, cwd="/", stdout=asyncio.subprocess.PIPE
    )
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 1, out
    assert "[FAIL] slack" in out and "[ok  ] redis" in out and "1 of 6 checks failed" in out


async def test_approver_sign_in_failures_are_told_apart(box: Sandbox, tmp_path: Path) -> None:
    config = load_bot_config(box.config_path)
    assert config.approvals.verification is not None
    group = config.approvals.verification.approver_group_id

    unknown_client = config_with(
        box,
        tmp_path,
        f'client_id = "{box.entra.public_client_id}"',
        'client_id = "00000000-0000-0000-0000-00000000dead"',
    )
    client = by_name(await run_checks(settings_for(box), unknown_client))["approver sign-in"]
    assert not client.ok and "AADSTS700016" in client.detail and "client_id" in client.fix

    elsewhere = config_with(box, tmp_path, 'public_url = "http://127.0.0.1:', 'public_url = "http://localhost:')
    redirect = by_name(await run_checks(settings_for(box), elsewhere))["approver sign-in"]
    assert not redirect.ok and "AADSTS50011" in redirect.detail and "redirect URI" in redirect.fix

    device_code = config_with(box, tmp_path, 'method = "auth_code"', 'method = "device_code"')
    risky = by_name(await run_checks(settings_for(box), device_code))["approver sign-in"]
    assert risky.ok and "phishable" in risky.detail and "method = auth_code" in risky.detail

    no_group = config_with(box, tmp_path, f'approver_group_id = "{group}"', 'approver_group_id = "no-such-group"')
    missing = by_name(await run_checks(settings_for(box), no_group))["approver sign-in"]
    assert not missing.ok and "no-such-group does not exist" in missing.detail

    box.entra.state.roles = ("Organization.Read.All", "AuditLog.Read.All")  # no GroupMember.Read.All
    try:
        forbidden = by_name(await run_checks(settings_for(box), config))["approver sign-in"]
    finally:
        box.entra.state.roles = GRAPH_ROLES
    assert not forbidden.ok and "GroupMember.Read.All" in forbidden.fix
    assert len({client.detail, redirect.detail, missing.detail, forbidden.detail}) == 4


async def test_operator_groups_are_checked_where_operators_run_changes(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "operators.toml"
    base = box.config_path.read_text()
    path.write_text(base + '\n[operators]\ngroups = ["S0KERBADMINS"]\n\n[approvals.setup]\nexecution = "operator"\n')
    found = by_name(await run_checks(settings_for(box), load_bot_config(path)))["operators"]
    assert found.ok and "S0KERBADMINS: 4" in found.detail
    path.write_text(base + '\n[operators]\ngroups = ["S0NOSUCHGROUP"]\n\n[approvals.setup]\nexecution = "operator"\n')
    missing = by_name(await run_checks(settings_for(box), load_bot_config(path)))["operators"]
    assert not missing.ok and "S0NOSUCHGROUP" in missing.detail and "no_such_subteam" in missing.detail
