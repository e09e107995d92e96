"""``kerberos-bot check``: reach every configured part once and say, per part, what is wrong and how to fix it.

Secrets are never printed: URLs lose their passwords, and errors are the adapters' user-safe messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse, urlunparse

from redis.exceptions import RedisError, ResponseError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.entra.auth_code import MsalBrowserSignIn
from bot.adapters.entra.device_code import MsalDeviceCodeSignIn
from bot.bootstrap.adapters import (
    approver_browser_sign_in,
    approver_sign_in,
    graph_directory,
    ldap_directory,
    redis_client,
    redis_credentials,
)
from bot.config import ACTION_KEYS, BotConfig, Settings, VerificationConfig
from bot.config.settings import MEMORY_URL
from bot.domain.errors import (
    DirectoryAuthError,
    DirectoryUnavailable,
    EntraAuthError,
    EntraForbidden,
    EntraNotFound,
    KerberosBotError,
)
from bot.entrypoints.check_remoting import CALL_SECONDS, check_management_host, check_remoting
from bot.entrypoints.check_result import CheckResult

__all__ = ["CheckResult", "check_remoting", "run_checks"]

TIMEOUT = CALL_SECONDS  # each check but the management host's reads


def redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        netloc = f"{parsed.username or ''}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
        return urlunparse(parsed._replace(netloc=netloc))
    return url


async def _redis(url: str, config: BotConfig | None = None) -> CheckResult:
    if url == MEMORY_URL:
        return CheckResult(
            "redis",
            False,
            "memory://: approvals are kept in one process and lost when it stops",
            "for a trial only; give a Redis (REDIS_URL=redis://…) before anyone relies on an approval",
        )
    credentials = redis_credentials(config) if config is not None else None
    client = redis_client(url, credentials)
    try:
        await client.ping()
        try:
            policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy", "noeviction")
        except ResponseError:  # CONFIG refused by an ACL: nothing to say about eviction
            policy = "noeviction"
        if policy != "noeviction":
            return CheckResult(
                "redis",
                False,
                f"{redact(url)} answers, but evicts keys under memory pressure (maxmemory-policy {policy})",
                "set maxmemory-policy noeviction: an evicted lock, lease or request is a safety bug",
            )
        return CheckResult("redis", True, f"{redact(url)} answers (maxmemory-policy noeviction)")
    except (RedisError, OSError) as exc:
        return CheckResult(
            "redis",
            False,
            f"{redact(url)} did not answer ({type(exc).__name__})",
            "start Redis or correct REDIS_URL; approvals are kept there",
        )
    finally:
        await client.aclose()
        if credentials is not None:
            await credentials.aclose()


async def _domain(config: BotConfig, name: str) -> CheckResult:
    domain = config.domain(name)
    assert domain is not None
    label = f"ldap {name}"
    try:
        directory = ldap_directory(domain)
    except KerberosBotError as exc:  # e.g. the bind password's environment variable is missing
        return CheckResult(label, False, exc.user_message, "set the secret the configuration names")
    try:
        state = await directory.read_kerberos_objects()
        server = state.server
        found = f"Kerberos server ID {server.server_id}" if server else "no Entra Kerberos server yet"
        trust = ", cloud trust present" if state.trusted_domain else ""
        return CheckResult(label, True, f"bound as {domain.bind_user} on {state.read_from}: {found}{trust}")
    except DirectoryAuthError as exc:
        return CheckResult(label, False, exc.user_message, f"check the password of {domain.bind_user}")
    except DirectoryUnavailable as exc:
        return CheckResult(label, False, exc.user_message, "check ldap_urls, the firewall (636) and ca_file")
    except KerberosBotError as exc:
        return CheckResult(label, False, exc.user_message)
    finally:
        await directory.close()


async def _entra(config: BotConfig) -> CheckResult:
    try:
        graph = graph_directory(config)
    except KerberosBotError as exc:
        return CheckResult("entra", False, exc.user_message, "set the secret the configuration names")
    try:
        tenant = await graph.tenant()
        await graph.kerberos_domain_events(config.domains[0].name, limit=1)
        return CheckResult(
            "entra", True, f"signed in to tenant {tenant.display_name} ({tenant.id}); audit log readable"
        )
    except EntraAuthError as exc:
        return CheckResult("entra", False, exc.user_message, "check tenant_id, client_id and the secret or certificate")
    except EntraForbidden as exc:
        return CheckResult("entra", False, exc.user_message, "grant the application permissions and admin consent")
    except KerberosBotError as exc:
        return CheckResult("entra", False, exc.user_message)
    finally:
        await graph.close()


async def _slack(settings: Settings) -> CheckResult:
    if settings.slack_bot_token is None:
        return CheckResult("slack", False, "SLACK_BOT_TOKEN is not set", "copy the Bot User OAuth Token of the app")
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
    try:
        answer = await client.auth_test()
        return CheckResult("slack", True, f"token of {answer.get('user')} in team {answer.get('team')}")
    except SlackApiError as exc:
        return CheckResult(
            "slack",
            False,
            f"Slack refused the token ({exc.response.get('error')})",
            "copy the Bot User OAuth Token of the installed app into SLACK_BOT_TOKEN",
        )
    except Exception as exc:
        return CheckResult(
            "slack",
            False,
            f"{settings.slack_api_url} could not be reached ({type(exc).__name__})",
            "check SLACK_API_URL and outbound HTTPS",
        )


async def _operators(settings: Settings, config: BotConfig) -> CheckResult:
    """Operator-executes mode: every operator group exists in Slack and someone is in them."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url)
    sizes = []
    for group in config.operators.groups:
        try:
            answer = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            return CheckResult(
                "operators",
                False,
                f"Slack did not list the operator group {group} ({exc.response.get('error')})",
                "name an existing user group in [operators] groups; the app needs the usergroups:read scope",
            )
        except Exception as exc:
            return CheckResult(
                "operators", False, f"{settings.slack_api_url} could not be reached ({type(exc).__name__})"
            )
        sizes.append(f"{group}: {len(answer.get('users') or [])}")
    if all(size.endswith(": 0") for size in sizes):
        return CheckResult(
            "operators", False, f"nobody is in the operator groups ({', '.join(sizes)})", "add the operators in Slack"
        )
    return CheckResult("operators", True, f"members per operator group: {', '.join(sizes)}")


def verified_actions(config: BotConfig) -> list[str]:
    return [key for key in ACTION_KEYS if config.approvals.verified(key)]


DEVICE_CODE_RISK = (
    "device code flow (method = device_code): phishable (device-code phishing), and blocked by tenants whose "
    "Conditional Access blocks that flow; use method = auth_code wherever the bot has a public listener"
)

_PROBE_FIXES = {
    "AADSTS700016": "approvals.verification.client_id names no app in the tenant",
    "AADSTS50011": "register <public_url>/auth/callback as a redirect URI of the approvers' app",
}


async def _sign_in_starts(config: BotConfig, settings: VerificationConfig) -> CheckResult | str:
    """The approvers' app starts a sign-in (nobody completes it): what works, or the failed check."""
    label = "approver sign-in"
    sign_in: MsalBrowserSignIn | MsalDeviceCodeSignIn
    try:
        if settings.method == "auth_code":
            sign_in = approver_browser_sign_in(config.entra, settings)
        else:
            sign_in = approver_sign_in(config.entra, settings)
    except KerberosBotError as exc:
        return CheckResult(label, False, exc.user_message)
    try:
        if isinstance(sign_in, MsalBrowserSignIn):
            error = await sign_in.probe(settings.redirect_uri)
            if error is not None:
                fix = _PROBE_FIXES.get(error, "look the code up at https://login.microsoftonline.com/error")
                return CheckResult(label, False, f"Entra's sign-in page answers {error} for this app", fix)
            return f"browser sign-in page opens for client {settings.client_id}, redirect {settings.redirect_uri}"
        await sign_in.start()  # left to expire: nobody signs in
        return f"device-code sign-in starts for client {settings.client_id}; {DEVICE_CODE_RISK}"
    except EntraAuthError as exc:
        return CheckResult(
            label, False, exc.user_message, "check approvals.verification.client_id and its app registration"
        )
    except KerberosBotError as exc:
        return CheckResult(label, False, exc.user_message, "check entra.authority_host and ca_file")
    finally:
        sign_in.close()


async def _approver_verification(config: BotConfig, settings: VerificationConfig) -> CheckResult:
    """The approvers' app starts a sign-in, and the bot's own app may read the approver group that
    ``checkMemberGroups`` will be asked about."""
    label = "approver sign-in"
    started = await _sign_in_starts(config, settings)
    if isinstance(started, CheckResult):
        return started
    try:
        graph = graph_directory(config)
    except KerberosBotError as exc:
        return CheckResult(label, False, exc.user_message, "set the secret the configuration names")
    group = settings.approver_group_id
    try:
        name = await graph.group_display_name(group)
    except EntraForbidden as exc:
        return CheckResult(
            label, False, exc.user_message, "grant the bot's app GroupMember.Read.All (application) with admin consent"
        )
    except EntraNotFound:
        return CheckResult(
            label, False, f"the approver group {group} does not exist in the tenant", "check approver_group_id"
        )
    except KerberosBotError as exc:
        return CheckResult(label, False, exc.user_message)
    finally:
        await graph.close()
    return CheckResult(
        label,
        True,
        f"{started}; approver group '{name}' readable "
        f"(verified approvals for {', '.join(verified_actions(config)) or 'no action'})",
    )


async def run_checks(settings: Settings, config: BotConfig) -> list[CheckResult]:
    async def bounded(name: str, check: Awaitable[CheckResult]) -> CheckResult:
        try:
            return await asyncio.wait_for(check, TIMEOUT)
        except TimeoutError:
            return CheckResult(name, False, f"no answer within {TIMEOUT:g} s")

    checks: list[tuple[str, Callable[[], Awaitable[CheckResult]]]] = [
        ("redis", lambda: _redis(settings.redis_url, config)),
        *[(f"ldap {d.name}", lambda n=d.name: _domain(config, n)) for d in config.domains],
        ("entra", lambda: _entra(config)),
        ("slack", lambda: _slack(settings)),
    ]
    if (verification := config.approvals.verification) is not None:
        checks.append(("approver sign-in", lambda: _approver_verification(config, verification)))
    if config.operators.groups:
        checks.append(("operators", lambda: _operators(settings, config)))

    async def remoting() -> list[CheckResult]:
        remoting = config.kerberos_module.remoting
        if config.kerberos_module.kind != "remoting" or remoting is None:
            return []
        return await check_management_host(remoting, [d.name for d in config.domains])

    singles, remote = await asyncio.gather(
        asyncio.gather(*(bounded(name, make()) for name, make in checks)), remoting()
    )
    return [*singles, *remote]
