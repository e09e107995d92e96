"""The ``kerberos-bot`` command line: its subcommands, options and help (``bot.entrypoints.cli`` runs them)."""

from __future__ import annotations

import argparse
import ipaddress
from datetime import UTC, datetime
from pathlib import Path

from bot import __version__
from bot.adapters.redis.keys import KEYSPACE
from bot.domain.errors import ConfigurationError

DESCRIPTION = """\
Slack chat-ops for Microsoft Entra Kerberos (Azure SQL Managed Instance, incoming trust-based flow).

Settings come from the environment (and .env): SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN,
SLACK_APP_TOKEN (socket mode), SLACK_API_URL, REDIS_URL (redis://, rediss://, redis+sentinel://,
redis+cluster://, or memory:// for a one-process trial), KERBEROS_BOT_CONFIG (the TOML file
declaring the domains, the Entra app and the policy), LOG_LEVEL.
"""


def moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date or time such as 2026-11-01T08:00") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kerberos-bot", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"kerberos-bot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run HTTP mode: Slack posts to /slack/events; this process also carries out approved changes and runs "
        "the lifecycle scheduler (scheduled rotations, the watch, digests; one leader across replicas)",
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="port of Slack's endpoint, /slack/events (default 3000)")
    serve.add_argument(
        "--health-host",
        default="127.0.0.1",
        help="address of the health listener: /healthz, /readyz, /metrics (default 127.0.0.1, never public)",
    )
    serve.add_argument("--health-port", type=int, default=3001, help="port of the health listener (default 3001)")
    serve.add_argument(
        "--command-workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes started beside this one that do the commands' follow-up work (reads, replies) "
        "through Redis, so this process only acknowledges; 0: do the work here (default 1)",
    )
    worker = sub.add_parser(
        "worker",
        help="do the follow-up work of commands that serve queued in Redis (serve starts its own; "
        "run more of these, on other hosts too, to add workers)",
    )
    worker.add_argument("--name", help="the consumer name in Redis and the logs (default: host-pid)")
    worker.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    worker.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="lower this process's CPU priority by N (serve starts its workers with 19, so acknowledging "
        "commands always comes before replying to them; default 0)",
    )
    sub.add_parser("socket", help="run Socket Mode (needs SLACK_APP_TOKEN)")
    sub.add_parser(
        "check",
        help="check the configuration and reach Redis, every DC, Entra, Slack, the management host and its "
        "module (kind = remoting: every domain read there once, as a status reads them) and the approvers' "
        "sign-in (verified approvals) once; exit 1 if any fails",
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
        metavar="A,B,C",
        help="the loopback addresses of the sandbox's DCs: contoso.test's first DC, fabrikam.test's DC, "
        "contoso.test's second DC (default 127.0.0.1,127.0.0.2,127.0.0.3; with two, contoso.test has one DC); "
        "for a machine where something else already serves LDAP or Kerberos there",
    )
    demo.add_argument(
        "--no-console",
        action="store_true",
        help="only the first command; otherwise a console reads more commands and clicks from standard input",
    )
    audit = sub.add_parser(
        "audit",
        help="the audit trail out of Redis: `export` writes the entries of a time range as JSON lines or CSV",
    )
    audit.add_argument("action", choices=("export",))
    audit.add_argument("--since", required=True, type=moment, help="UTC, e.g. 2026-11-01 or 2026-11-01T08:00")
    audit.add_argument("--until", type=moment, help="UTC, exclusive (default: now)")
    audit.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    audit.add_argument("--output", type=Path, help="a file to write (default: standard output)")
    audit.add_argument("--prefix", default=KEYSPACE, help=f"the bot's key prefix in Redis (default {KEYSPACE})")
    box = sub.add_parser(
        "sandbox",
        help="the local sandbox on its own (no console): `up` starts the DCs, the stand-ins and the bot and prints "
        "where they listen (also in .sandbox/endpoints.json); `down` stops them",
    )
    box.add_argument("action", choices=("up", "down"))
    box.add_argument("--dc-addresses", metavar="A,B,C", help="as for demo")
    box.add_argument("--keep-dcs", action="store_true", help="down: leave the Samba DCs running (~2 s to reuse)")
    box.add_argument(
        "--workdir",
        type=Path,
        help="where the configuration, the embedded Redis and endpoints.json live "
        "(default $KERBEROS_BOT_SANDBOX_DIR, else ./.sandbox)",
    )
    return parser


def dc_addresses(given: str | None) -> tuple[str, ...] | None:
    if given is None:
        return None
    addresses = [a.strip() for a in given.split(",") if a.strip()]
    if len(addresses) not in (2, 3) or len(set(addresses)) != len(addresses):
        raise ConfigurationError(
            "--dc-addresses: give two or three different addresses, e.g. 127.0.0.5,127.0.0.6,127.0.0.7"
        )
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise ConfigurationError(f"--dc-addresses: {address!r} is not an IP address") from exc
        if not ip.is_loopback or ip.version != 4:
            raise ConfigurationError(f"--dc-addresses: {address} is not an IPv4 loopback address (127.x.y.z)")
    return tuple(addresses)
