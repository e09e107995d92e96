"""``kerberos-bot``: serve (HTTP mode), socket (Socket Mode), demo (local sandbox)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from slack_bolt.async_app import AsyncApp

from bot import __version__
from bot.config import Settings, load_bot_config, load_settings
from bot.domain.errors import ConfigurationError, KerberosBotError
from bot.logs import configure as configure_logging
from bot.web import Readiness

log = logging.getLogger("kerberos_bot")

DESCRIPTION = """\
Slack chat-ops for Microsoft Entra Kerberos (Azure SQL Managed Instance, incoming trust-based flow).

Settings come from the environment (and .env): SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN,
SLACK_APP_TOKEN (socket mode), SLACK_API_URL, REDIS_URL, KERBEROS_BOT_CONFIG (the TOML file
declaring the domains, the Entra app and the policy), LOG_LEVEL.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerberos-bot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"kerberos-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run HTTP mode: Slack posts to /slack/events")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    sub.add_parser("socket", help="run Socket Mode (needs SLACK_APP_TOKEN)")
    sub.add_parser(
        "check",
        help="check the configuration and reach Redis, every DC, Entra, Slack, the management host and its "
        "module (kind = remoting) and the approvers' sign-in (verified approvals) once; exit 1 if any fails",
    )
    demo = sub.add_parser(
        "demo",
        help="the local sandbox: a Samba AD DC, the Entra and Slack stand-ins, and the bot, "
        "driven by a signed /kerberos status; prints what Slack would show",
    )
    demo.add_argument("--text", default="status", help="what to type after /kerberos (default: status)")
    demo.add_argument("--keep-running", action="store_true", help="keep the sandbox and the bot running")
    demo.add_argument(
        "--dc-addresses",
        metavar="A,B",
        help="the two loopback addresses the sandbox's DCs listen on (default 127.0.0.1,127.0.0.2); "
        "for a machine where something else already serves LDAP or Kerberos there",
    )
    demo.add_argument(
        "--no-console",
        action="store_true",
        help="only the first command; otherwise a console reads more commands and clicks from standard input",
    )
    return parser


def _require(settings: Settings, *names: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        secret = getattr(settings, name)
        value = secret.get_secret_value() if secret is not None else ""
        if not value:
            raise ConfigurationError(f"environment variable {name.upper()} is not set")
        values[name] = value
    return values


def _config_path(settings: Settings) -> Path:
    if settings.kerberos_bot_config is None or not str(settings.kerberos_bot_config).strip():
        raise ConfigurationError("environment variable KERBEROS_BOT_CONFIG is not set (path of the TOML file)")
    return settings.kerberos_bot_config


def _dc_addresses(given: str | None) -> tuple[str, str] | None:
    if given is None:
        return None
    addresses = [a.strip() for a in given.split(",") if a.strip()]
    if len(addresses) != 2 or len(set(addresses)) != 2:
        raise ConfigurationError("--dc-addresses: give two different addresses, e.g. 127.0.0.5,127.0.0.6")
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise ConfigurationError(f"--dc-addresses: {address!r} is not an IP address") from exc
        if not ip.is_loopback or ip.version != 4:
            raise ConfigurationError(f"--dc-addresses: {address} is not an IPv4 loopback address (127.x.y.z)")
    return addresses[0], addresses[1]


@asynccontextmanager
async def _running_bot(
    settings: Settings, signing_secret: str, bot_token: str
) -> AsyncIterator[tuple[AsyncApp, Readiness]]:
    """The wired Bolt app, with every connection released on the way out."""
    from bot.bootstrap import build_components
    from bot.slack_app import build_bolt_app, slack_client
    from handlers.approvals import ChangeWorker
    from handlers.groups import SlackProfiles, SlackUserGroups
    from handlers.responder import ResponseUrlPoster

    client = slack_client(bot_token, settings.slack_api_url)
    components = build_components(
        load_bot_config(_config_path(settings)),
        redis_url=settings.redis_url,
        groups=SlackUserGroups(client),
        profiles=SlackProfiles(client),
    )
    poster = ResponseUrlPoster()
    worker = ChangeWorker(components.services.changes, client) if components.services.changes else None
    try:
        if worker is not None:
            worker.start()
        bolt = build_bolt_app(signing_secret=signing_secret, client=client, services=components.services, poster=poster)
        yield bolt, components.readiness
    finally:
        if worker is not None:
            await worker.stop()
        await poster.close()
        await components.aclose()


async def _serve(settings: Settings, host: str, port: int) -> None:
    from bot.web import EVENTS_PATH, build_web_app, start_site

    secrets = _require(settings, "slack_signing_secret", "slack_bot_token")
    async with _running_bot(settings, secrets["slack_signing_secret"], secrets["slack_bot_token"]) as (bolt, ready):
        runner, port = await start_site(build_web_app(bolt, ready), host, port)
        log.info("listening on http://%s:%d%s", host, port, EVENTS_PATH)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


async def _socket(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    secrets = _require(settings, "slack_app_token", "slack_bot_token")
    # Socket Mode carries no HTTP signature; Slack authenticates the websocket with the app token.
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "unused"
    async with _running_bot(settings, signing_secret, secrets["slack_bot_token"]) as (bolt, _):
        await AsyncSocketModeHandler(bolt, secrets["slack_app_token"]).start_async()  # type: ignore[no-untyped-call]


async def _check(settings: Settings) -> int:
    from bot.check import run_checks

    results = await run_checks(settings, load_bot_config(_config_path(settings)))
    for result in results:
        print(result.line())
    failed = sum(not r.ok for r in results)
    print(f"{failed} of {len(results)} checks failed" if failed else f"all {len(results)} checks passed")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "demo":  # the demo prints what Slack shows; only problems go to the log
            configure_logging("WARNING", json_lines=False)
        else:
            configure_logging(settings.log_level, json_lines=settings.log_format == "json")
        if args.command == "serve":
            asyncio.run(_serve(settings, args.host, args.port))
        elif args.command == "socket":
            asyncio.run(_socket(settings))
        elif args.command == "check":
            return asyncio.run(_check(settings))
        elif args.command == "demo":
            from bot.sandbox.demo import run_demo

            return asyncio.run(
                run_demo(
                    text=args.text,
                    keep_running=args.keep_running,
                    console=not args.no_console,
                    redis_url=settings.redis_url,
                    dc_addresses=_dc_addresses(args.dc_addresses),
                )
            )
    except ConfigurationError as exc:
        print(f"kerberos-bot: configuration error: {exc}", file=sys.stderr)
        return 2
    except KerberosBotError as exc:
        print(f"kerberos-bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
