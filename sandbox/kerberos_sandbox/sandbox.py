"""The local sandbox: real Samba AD DCs, the Entra and Slack stand-ins, and the bot on loopback.

Used by ``kerberos-bot demo``, ``kerberos-bot sandbox up``, the end-to-end tests and the benchmarks.
Nothing reaches Slack or Microsoft. Needs root (Samba listens on privileged ports) and the Debian
packages that ``scripts/install-system-packages.sh`` installs. Its shell scripts are package data
(``kerberos_sandbox/scripts``), so an installed sandbox works outside the checkout too.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.adapters.redis.client import connect
from bot.bootstrap.components import Components
from bot.bootstrap.slack import SlackAccess, WorkerPlan, build_bot
from bot.config import load_bot_config
from bot.domain.ports import SetServerOptions
from bot.domain.verification import CALLBACK_PATH
from bot.entrypoints.web import EVENTS_PATH, bind_socket, start_site
from kerberos_sandbox.entra_standin import EntraStandIn
from kerberos_sandbox.redis_server import PrivateRedis
from kerberos_sandbox.redis_server import answers as redis_answers
from kerberos_sandbox.samba_dc import ADMIN_PASSWORD, DEFAULT_DOMAINS, SandboxDomain, samba
from kerberos_sandbox.slack_requests import (
    AckResult,
    event_body,
    interaction_form,
    send_slash_command,
    signed_headers,
    slash_command_form,
)
from kerberos_sandbox.slack_standin import SlackStandIn


def default_workdir() -> Path:
    """The sandbox's configuration, Redis and endpoints: ``$KERBEROS_BOT_SANDBOX_DIR``, else ./.sandbox."""
    return Path(os.environ.get("KERBEROS_BOT_SANDBOX_DIR") or Path.cwd() / ".sandbox")


# Slack user groups of the sandbox: who may approve (an approver never approves their own request).
SANDBOX_GROUPS = {"S0KERBADMINS": ("U0ALICE", "U0BOB", "U0CAROL", "U0DAVE")}
# Their Entra accounts (the Slack profile e-mail matches the UPN). Dave is in the Slack approver group
# but not in the Entra one, so his verified approvals are refused; Mallory is in neither.
SANDBOX_PEOPLE = {
    "U0ALICE": "alice@contoso.test",
    "U0BOB": "bob@contoso.test",
    "U0CAROL": "carol@contoso.test",
    "U0DAVE": "dave@contoso.test",
    "U0MALLORY": "mallory@contoso.test",
}
ENTRA_APPROVERS = ("U0ALICE", "U0BOB", "U0CAROL")
ENTRA_APPROVER_GROUP = "6b3f2a2e-0000-4000-8000-00000000a11c"  # fixed, so the demo's config reads well


def seed_people(entra: EntraStandIn, slack: SlackStandIn) -> None:
    """Entra users and the (nested) approver group; Slack profile e-mails to match them."""
    users = {slack_id: entra.people.add_user(upn) for slack_id, upn in SANDBOX_PEOPLE.items()}
    tier0 = entra.people.add_group("Tier 0 admins", [users["U0ALICE"].object_id])
    members = [tier0, *(users[u].object_id for u in ENTRA_APPROVERS if u != "U0ALICE")]
    entra.people.add_group("Kerberos approvers", members, group_id=ENTRA_APPROVER_GROUP)
    slack.user_emails.update(SANDBOX_PEOPLE)


async def _drop_keys(redis_url: str, prefix: str) -> None:
    client = connect(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def sandbox_config(
    domains: tuple[SandboxDomain, ...],
    entra: EntraStandIn,
    *,
    verified_approvals: bool = True,
    freeze_verified: bool = False,
    public_url: str = "http://127.0.0.1:3000",
    verification_method: str = "auth_code",
    extra: str = "",
) -> str:
    """The TOML a real deployment would write, pointed at the sandbox. ``verified_approvals=False``
    switches the Entra sign-in of approvers off (its default is on for the dangerous actions);
    ``public_url`` is where approvers' browsers come back after it (the bot's Slack listener)."""
    lines = [
        "sandbox = true  # inline secrets below: accepted for the sandbox only",
        "",
        "[policy]",
        "key_max_age_days = 180",
        "rotation_min_interval_hours = 24",
        "status_per_minute = 600  # the suites read status in bursts; production keeps 20",
        "",
        "[entra]",
        f'tenant_id = "{entra.tenant_id}"',
        f'client_id = "{entra.client_id}"',
        f'client_secret = {{ value = "{entra.client_secret}" }}',
        f'authority_host = "{entra.url}"',
        f'graph_url = "{entra.url}"',
        f'ca_file = "{entra.ca_file}"',
        "",
    ]
    for d in domains:
        lines += [
            "[[domains]]",
            f'name = "{d.name}"',
            "ldap_urls = [" + ", ".join(f'"ldaps://{a}:636"' for a in d.addresses) + "]",
            f'bind_user = "Administrator@{d.name}"',
            f'bind_password = {{ value = "{ADMIN_PASSWORD}" }}',
            f'ca_file = "{d.ca_file}"',
            *([f'forest_root = "{d.forest_root}"'] if d.forest_root else []),
            "",
        ]
    lines += ["[approvals]", "default_approver_groups = [" + ", ".join(f'"{g}"' for g in SANDBOX_GROUPS) + "]", ""]
    if verified_approvals:
        lines += [
            "[approvals.verification]",
            f'method = "{verification_method}"',
            f'client_id = "{entra.public_client_id}"',
            f'approver_group_id = "{ENTRA_APPROVER_GROUP}"',
            f'public_url = "{public_url}"',
            "",
        ]
    else:
        for key in ("rotate_force", "remove_tdo", "setup", "remove_all"):
            lines += [f"[approvals.{key}]", "verified_approval = false", ""]
    lines += [
        "[kerberos_module]",
        'kind = "emulator"',
        "",
        "[kerberos_module.emulator]",
        f'cloud_url = "{entra.url}"',
        "",
    ]
    for d in domains:
        lines += [f'[kerberos_module.emulator.domains."{d.name}"]', f'samba_conf = "{d.samba.smb_conf}"', ""]
    # the last table, so a test may append keys to it
    lines += ["[changes]", f'integrity_key = {{ value = "{secrets.token_hex(32)}" }}']
    lines += ["freeze_verified = true", ""] if freeze_verified else [""]
    if extra:  # more tables, after every table above (a test's [operators], say)
        lines += [extra, ""]
    return "\n".join(lines)


@dataclass
class Sandbox:
    domains: tuple[SandboxDomain, ...]
    entra: EntraStandIn
    slack: SlackStandIn
    components: Components
    endpoint: str
    signing_secret: str
    session: aiohttp.ClientSession
    config_path: Path
    health_url: str = ""  # /healthz, /readyz, /metrics: a listener of their own
    redis_url: str = ""  # where the approvals are kept (the embedded redis-server when none answered)
    store_prefix: str = ""  # the bot's keys there

    async def command(
        self, text: str, *, user_id: str = "U0ALICE", wait: bool = True, timeout: float = 60.0
    ) -> tuple[AckResult, list[dict[str, Any]]]:
        """Type ``/kerberos <text>`` as a Slack user; returns the ack and the replies that followed."""
        response_url = self.slack.new_response_url()
        form = slash_command_form(text, response_url=response_url, user_id=user_id)
        ack = await send_slash_command(self.session, self.endpoint, self.signing_secret, form)
        replies: list[dict[str, Any]] = []
        # commands with slow work acknowledge with "Checking…" or with an empty body, then reply
        if wait and ack.status == 200 and (not ack.body or "Checking" in ack.body):
            replies = await self.slack.wait_for_responses(response_url, 1, timeout)
        return ack, replies

    @property
    def base_url(self) -> str:
        return self.endpoint.removesuffix(EVENTS_PATH)

    async def event(self, event: dict[str, Any]) -> AckResult:
        """A signed Events API request (``app_home_opened``), as Slack sends it."""
        body = event_body(event)
        headers = {**signed_headers(self.signing_secret, body), "Content-Type": "application/json"}
        started = time.perf_counter()
        async with self.session.post(self.endpoint, data=body, headers=headers) as response:
            return AckResult(response.status, await response.text(), time.perf_counter() - started)

    async def interact(self, payload: dict[str, Any]) -> AckResult:
        """A signed interactivity request (a button click, a dialog submission), as Slack sends it."""
        return await send_slash_command(self.session, self.endpoint, self.signing_secret, interaction_form(payload))


async def seed(sandbox_domains: tuple[SandboxDomain, ...], components: Components) -> None:
    """Bring each domain into the state a real deployment has, through the module (converges)."""
    for d in sandbox_domains:
        report = await components.module.get_server(d.name)
        has_trust = bool(report.cloud_trust_display)
        if not (report.has_on_prem and report.has_cloud) or (d.cloud_trust and not has_trust):
            await components.module.set_server(d.name, SetServerOptions(setup_cloud_trust=d.cloud_trust))
        elif has_trust and not d.cloud_trust:
            await components.module.remove_trusted_domain_object(d.name)


@asynccontextmanager
async def sandbox(
    domains: tuple[SandboxDomain, ...] = DEFAULT_DOMAINS,
    *,
    workdir: Path | None = None,
    seed_domains: bool = True,
    fresh: bool = True,
    redis_url: str = "redis://127.0.0.1:6379/0",
    verified_approvals: bool = True,
    freeze_verified: bool = False,
    verification_method: str = "auth_code",
    extra_config: str = "",
    command_workers: int = 0,
    # replication between the sandbox's DCs takes a second or two, not the hours of a real forest
    follow_key_every: timedelta = timedelta(seconds=2),
    follow_key_for: timedelta = timedelta(minutes=10),
) -> AsyncIterator[Sandbox]:
    """``fresh``: restore each DC from its pristine copy (about 2 s) instead of reusing its state.
    ``extra_config``: TOML tables appended to the configuration.
    ``command_workers``: queue the commands' follow-up work in Redis for that many command workers
    (in this process), as ``kerberos-bot serve`` does with its worker processes; 0: work inline."""
    workdir = workdir or default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        # Provisioning is CPU-bound; start the DCs one after the other on 2 cores.
        for d in domains:
            await samba("reset" if fresh else "up", d)
        entra = await stack.enter_async_context(EntraStandIn())
        slack_socket = bind_socket()  # its port is the sign-in's redirect URI, in the configuration
        stack.callback(slack_socket.close)
        public_url = f"http://127.0.0.1:{slack_socket.getsockname()[1]}"
        entra.people.redirect_uris.add(public_url + CALLBACK_PATH)  # the approvers' app registration
        config_path = workdir / "kerberos-bot.toml"
        config_path.write_text(
            sandbox_config(
                domains,
                entra,
                verified_approvals=verified_approvals,
                freeze_verified=freeze_verified,
                public_url=public_url,
                verification_method=verification_method,
                extra=extra_config,
            ),
            encoding="utf-8",
        )
        if not await redis_answers(redis_url):
            # no Redis where configured: bring a real one (Debian's redis-server), private to this sandbox
            embedded = PrivateRedis(workdir / "redis")
            embedded.directory.mkdir(parents=True, exist_ok=True)
            await embedded.start()
            stack.push_async_callback(embedded.stop)
            redis_url = embedded.url
        slack = await stack.enter_async_context(SlackStandIn())
        slack.user_groups = {g: list(users) for g, users in SANDBOX_GROUPS.items()}
        seed_people(entra, slack)
        entra.people.device_code_interval = 1  # msal polls every second: the demo answers at once
        store_prefix = f"{{kerberos-bot-sandbox-{secrets.token_hex(4)}}}"  # one hash tag: one slot
        signing_secret = secrets.token_hex(16)
        bot = build_bot(
            load_bot_config(config_path),
            SlackAccess(slack.bot_token, signing_secret, slack.api_url),
            redis_url=redis_url,
            store_prefix=store_prefix,
            workers=WorkerPlan(
                command_workers=command_workers,
                queue_commands=command_workers > 0,
                name="sandbox",
                follow_key_every=follow_key_every,
                follow_key_for=follow_key_for,
                command_block_ms=200,
            ),
        )
        components = bot.components
        assert components is not None  # built from the configuration
        stack.push_async_callback(_drop_keys, redis_url, store_prefix)
        stack.push_async_callback(bot.aclose)  # first: the workers stop before their keys go
        if seed_domains:
            await seed(domains, components)
        bot.start()
        web_app = bot.web_app()
        runner, port = await start_site(web_app, sock=slack_socket)
        stack.push_async_callback(runner.cleanup)
        health_runner, health_port = await start_site(bot.health_app(cache_seconds=0))
        stack.push_async_callback(health_runner.cleanup)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        yield Sandbox(
            domains,
            entra,
            slack,
            components,
            f"http://127.0.0.1:{port}{EVENTS_PATH}",
            signing_secret,
            session,
            config_path,
            f"http://127.0.0.1:{health_port}",
            redis_url,
            store_prefix,
        )
