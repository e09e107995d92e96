"""``kerberos-bot``: serve (HTTP mode), worker (command worker), socket (Socket Mode), check, audit (export),
demo and sandbox (the local sandbox, a distribution of its own that this module imports only when asked)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, load_bot_config, load_settings
from bot.config.settings import MEMORY_URL
from bot.domain.errors import ConfigurationError, KerberosBotError
from bot.entrypoints.arguments import dc_addresses, parser
from bot.observability.logs import configure as configure_logging
from bot.services.audit import Format, export

if TYPE_CHECKING:
    from bot.bootstrap.slack import Bot, WorkerPlan

log = logging.getLogger("kerberos_bot")


async def _audit_lines(settings: Settings, prefix: str, since: datetime, until: datetime, fmt: Format) -> list[str]:
    from bot.bootstrap.adapters import redis_client
    from bot.bootstrap.storage import redis_audit_trail

    client = redis_client(settings.redis_url)
    try:
        return list(await export(redis_audit_trail(client, prefix), since, until, fmt))
    finally:
        await client.aclose()


def _write_lines(lines: list[str], output: Path | None) -> int:
    if output is None:
        sys.stdout.writelines(lines)
        return 0
    with open(output, "w", encoding="utf-8", newline="") as out:
        out.writelines(lines)
    print(f"wrote {len(lines)} lines to {output}", file=sys.stderr)
    return 0


SANDBOX_MISSING = (
    "the sandbox is not installed (it is its own distribution, never in the production image): in a checkout run "
    "`make install`, or `pip install ./sandbox`"
)


def _sandbox_installed() -> bool:
    try:
        import kerberos_sandbox  # noqa: F401
    except ImportError:
        return False
    return True


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


def _bot(settings: Settings, signing_secret: str, bot_token: str, workers: WorkerPlan) -> Bot:
    from bot.bootstrap.slack import SlackAccess, build_bot

    return build_bot(
        load_bot_config(_config_path(settings)),
        SlackAccess(bot_token, signing_secret, settings.slack_api_url),
        redis_url=settings.redis_url,
        workers=workers,
    )


def _until_terminated() -> asyncio.Event:
    """Set on SIGTERM or SIGINT, so ``docker stop`` shuts down as cleanly as Ctrl-C."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    return done


def _share_metrics_with_workers() -> Path | None:
    """Counters of the worker processes must reach this process's /metrics: prometheus_client's
    multiprocess mode, which reads its directory from the environment when it is first imported."""
    if "prometheus_client" in sys.modules:  # too late (a test calling main() in process): per-process metrics
        return None
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="kerberos-bot-metrics-"))
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's values would be counted again
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # the workers inherit it
    return None if given else directory


def run_on_uvloop(main: Coroutine[Any, Any, None]) -> None:
    """The long-running processes (serve, worker, socket) run on uvloop's event loop where it is installed
    (not on Windows): every acknowledgement costs its CPU about a fifth less (docs/benchmarks.md)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _freeze_startup_heap() -> None:
    """Put what start-up built (modules, configuration, clients, caches) out of the collector's reach: a full
    collection would otherwise walk all of it, a pause of tens of milliseconds at a random request."""
    gc.collect()
    gc.freeze()


async def _serve(
    settings: Settings, host: str, port: int, command_workers: int, health: tuple[str, int] = ("127.0.0.1", 3001)
) -> None:
    from bot.bootstrap.slack import WorkerPlan, running_bot
    from bot.entrypoints.web import EVENTS_PATH, build_health_app, start_site
    from bot.workers.processes import CommandWorkerProcesses, worker_name

    secrets = _require(settings, "slack_signing_secret", "slack_bot_token")
    if command_workers < 0:
        raise ConfigurationError("--command-workers: give 0 or more")
    if settings.redis_url == MEMORY_URL and command_workers:
        log.warning("REDIS_URL=%s: no command worker process shares this one's memory; it does their work", MEMORY_URL)
        command_workers = 0
    terminated = _until_terminated()
    # the journal says which process claimed a change: host and pid tell replicas apart
    plan = WorkerPlan(queue_commands=command_workers > 0, name=f"changes-{worker_name(0)}")
    bot = _bot(settings, secrets["slack_signing_secret"], secrets["slack_bot_token"], plan)
    async with running_bot(bot):
        workers = CommandWorkerProcesses(command_workers)

        async def readiness() -> dict[str, str]:
            return {**await bot.readiness(), **await workers.readiness()}

        await workers.start()
        try:
            runner, port = await start_site(bot.web_app(), host, port)
            health_runner, health_port = await start_site(
                build_health_app(readiness, metrics=bot.services.metrics), *health
            )
            log.info("listening on http://%s:%d%s, %d command worker(s)", host, port, EVENTS_PATH, command_workers)
            log.info("health, readiness and metrics on http://%s:%d", health[0], health_port)
            _freeze_startup_heap()
            try:
                await terminated.wait()
                log.info("shutting down")
            finally:
                await runner.cleanup()
                await health_runner.cleanup()
        finally:
            await workers.stop()


async def _work(settings: Settings, name: str | None, exit_with_parent: bool) -> None:
    from bot.bootstrap.slack import WorkerPlan, running_bot
    from bot.workers.processes import worker_name

    secrets = _require(settings, "slack_bot_token")
    if settings.redis_url == MEMORY_URL:
        raise ConfigurationError(
            f"REDIS_URL={MEMORY_URL} keeps everything inside one serve process: a separate worker needs a Redis"
        )
    parent = os.getppid()
    terminated = _until_terminated()
    name = name or worker_name(0)
    # no signature to check here: the serving process took the command from Slack
    plan = WorkerPlan(changes=False, command_workers=1, name=name)
    async with running_bot(_bot(settings, "unused", secrets["slack_bot_token"], plan)):
        log.info("command worker %s taking commands", name)
        _freeze_startup_heap()
        while not terminated.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(terminated.wait(), 1.0)
            if exit_with_parent and os.getppid() != parent:
                log.warning("the serving process is gone; stopping")
                break


async def _socket(settings: Settings) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    secrets = _require(settings, "slack_app_token", "slack_bot_token")
    # Socket Mode carries no HTTP signature; Slack authenticates the websocket with the app token.
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "unused"
    verification = load_bot_config(_config_path(settings)).approvals.verification
    if verification is not None and verification.method == "auth_code":
        raise ConfigurationError(
            '[approvals.verification] method = "auth_code" needs the bot\'s public HTTPS listener for the sign-in '
            "callback, and Socket Mode has none: run `kerberos-bot serve` (HTTP mode), or set "
            'method = "device_code" (phishable, and blocked where Conditional Access blocks the device code flow; '
            "see docs/verified-approvals.md)"
        )
    from bot.bootstrap.slack import WorkerPlan, running_bot
    from bot.workers.processes import worker_name

    plan = WorkerPlan(name=f"changes-{worker_name(0)}")
    async with running_bot(_bot(settings, signing_secret, secrets["slack_bot_token"], plan)) as bot:
        await AsyncSocketModeHandler(bot.bolt, secrets["slack_app_token"]).start_async()  # type: ignore[no-untyped-call]


async def _check(settings: Settings) -> int:
    from bot.entrypoints.check import run_checks

    results = await run_checks(settings, load_bot_config(_config_path(settings)))
    for result in results:
        print(result.line())
    failed = sum(not r.ok for r in results)
    print(f"{failed} of {len(results)} checks failed" if failed else f"all {len(results)} checks passed")
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    metrics_dir = _share_metrics_with_workers() if args.command == "serve" and args.command_workers > 0 else None
    try:
        settings = load_settings()
        if args.command in ("demo", "sandbox"):  # they print what matters; only problems go to the log
            configure_logging("WARNING", json_lines=False)
        else:
            configure_logging(settings.log_level, json_lines=settings.log_format == "json")
        if args.command == "serve":
            run_on_uvloop(
                _serve(settings, args.host, args.port, args.command_workers, (args.health_host, args.health_port))
            )
        elif args.command == "worker":
            if args.nice:
                os.nice(args.nice)
            run_on_uvloop(_work(settings, args.name, args.exit_with_parent))
        elif args.command == "socket":
            run_on_uvloop(_socket(settings))
        elif args.command == "check":
            return asyncio.run(_check(settings))
        elif args.command == "audit":
            until = args.until or datetime.now(UTC)
            lines = asyncio.run(_audit_lines(settings, args.prefix, args.since, until, args.format))
            return _write_lines(lines, args.output)
        elif args.command in ("demo", "sandbox") and not _sandbox_installed():
            print(f"kerberos-bot: {SANDBOX_MISSING}", file=sys.stderr)
            return 2
        elif args.command == "sandbox":
            from kerberos_sandbox.standalone import run_down, run_up

            addresses = dc_addresses(args.dc_addresses)
            if args.action == "up":
                return asyncio.run(run_up(args.workdir, settings.redis_url, addresses))
            return asyncio.run(run_down(args.workdir, addresses, keep_dcs=args.keep_dcs))
        elif args.command == "demo":
            from kerberos_sandbox.demo import run_demo

            return asyncio.run(
                run_demo(
                    text=args.text,
                    keep_running=args.keep_running,
                    console=not args.no_console,
                    redis_url=settings.redis_url,
                    dc_addresses=dc_addresses(args.dc_addresses),
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
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
