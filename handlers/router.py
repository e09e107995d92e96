"""The ``/kerberos`` slash command: parse, acknowledge at once, run the work, reply.

Errors come in two tiers: a ``KerberosBotError`` is shown to the user as it is; anything else is
logged with its traceback and the user gets a short reply with a reference to find it in the log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError, UsageError
from bot.domain.ports import CommandQueue, DeferredCommand
from bot.observability.logs import REQUEST_ID, set_user
from bot.services.container import BotServices
from handlers.boundary import Ack, OnceAck, acknowledge, guard
from handlers.commands import CommandContext, Prepared, Subcommand, discover
from handlers.parsing import parse_command
from handlers.replies import Reply, error_reply
from handlers.responder import ResponseUrlPoster

log = logging.getLogger(__name__)

SUBCOMMANDS: tuple[Subcommand, ...] = discover()
COMMAND = "/kerberos"


def catalog(subcommands: Sequence[Subcommand] = SUBCOMMANDS) -> tuple[tuple[str, str], ...]:
    return tuple((s.usage, s.summary) for s in subcommands)


def manifest_command(subcommands: Sequence[Subcommand] = SUBCOMMANDS) -> dict[str, str]:
    """The slash command's description and usage hint in slack/manifest.json, from the catalog
    (``python -m handlers.router`` prints them; tests/unit/test_manifest.py checks the file)."""
    names = ", ".join(s.name for s in subcommands if s.name != "help")
    return {"description": f"Entra Kerberos: {names}", "usage_hint": " | ".join(s.usage for s in subcommands)}


def _unknown(name: str, subcommands: Sequence[Subcommand]) -> UsageError:
    valid = ", ".join(f"`{s.name}`" for s in subcommands)
    return UsageError(f"Unknown subcommand `{name}`. Valid subcommands: {valid}. Try `/kerberos help`.")


def _internal_error(where: str) -> Reply:
    ref = uuid.uuid4().hex[:8]
    log.exception("unexpected error in %s (ref %s)", where, ref)
    return error_reply(f"Something went wrong inside kerberos-bot (reference {ref}); an admin can find it in the log.")


class KerberosCommand:
    """The listener for ``/kerberos``; one instance per app.

    With a ``queue``, the follow-up work of an acknowledged command goes to the command workers
    (other processes, see ``bot.workers.commands``), so the acknowledging process only parses and
    acknowledges; without one, or when the queue fails, the work runs here after the acknowledgement.
    """

    def __init__(
        self,
        services: BotServices,
        poster: ResponseUrlPoster,
        subcommands: Sequence[Subcommand] = SUBCOMMANDS,
        queue: CommandQueue | None = None,
    ) -> None:
        self._services = services
        self._poster = poster
        self._queue = queue
        self._subcommands = {s.name: s for s in subcommands}
        self._catalog = catalog(subcommands)

    def _prepare(self, body: dict[str, Any], client: AsyncWebClient | None) -> Prepared:
        parsed = parse_command(str(body.get("text", "")))
        subcommand = self._subcommands.get(parsed.name)
        if subcommand is None:
            raise _unknown(parsed.name, list(self._subcommands.values()))
        ctx = CommandContext(
            user_id=str(body.get("user_id", "")),
            channel_id=str(body.get("channel_id", "")),
            services=self._services,
            catalog=self._catalog,
            client=client,
            team_id=str(body.get("team_id", "")),
            app_id=str(body.get("api_app_id", "")),
            trigger_id=str(body.get("trigger_id", "")),
        )
        return subcommand.prepare(parsed, ctx)

    def _label(self, text: str) -> str:
        """The subcommand for metrics: a known name, or "unknown" (never free text as a label)."""
        word = (text.strip().split() or ["help"])[0].lower()
        return word if word in self._subcommands else "unknown"

    async def __call__(self, ack: Ack, command: dict[str, Any], client: AsyncWebClient | None = None) -> None:
        set_user(str(command.get("user_id", "")))
        label = self._label(str(command.get("text", "")))
        # one line per command, written after the acknowledgement by whoever does its work: here, or the
        # worker that takes it from the queue (work_on)
        try:
            prepared = self._prepare(command, client)
        except KerberosBotError as exc:
            self._services.metrics.commands.labels(label, "refused").inc()
            await acknowledge(ack, error_reply(str(exc)))
            log.info("/kerberos %s", label)
            return
        except Exception:
            self._services.metrics.commands.labels(label, "error").inc()
            await acknowledge(ack, _internal_error("parsing /kerberos"))
            log.info("/kerberos %s", label)
            return
        await acknowledge(ack, prepared.ack)
        if prepared.now is not None:
            await self._now(prepared.now, str(command.get("response_url", "")), label)
        if prepared.work is None:
            log.info("/kerberos %s", label)
            self._services.metrics.commands.labels(label, "ok").inc()
        elif not await self._defer(command):
            log.info("/kerberos %s", label)
            await self._run(prepared.work, str(command.get("response_url", "")), label)

    async def _defer(self, command: dict[str, Any]) -> bool:
        if self._queue is None:
            return False
        deferred = DeferredCommand(
            text=str(command.get("text", "")),
            user_id=str(command.get("user_id", "")),
            channel_id=str(command.get("channel_id", "")),
            team_id=str(command.get("team_id", "")),
            app_id=str(command.get("api_app_id", "")),
            reply_to=str(command.get("response_url", "")),
            request_id=REQUEST_ID.get(),
            queued_at=datetime.now(UTC),
        )
        try:
            await self._queue.put(deferred)
        except Exception:
            log.warning("could not queue the command for a worker; doing its work here", exc_info=True)
            return False
        return True

    async def work_on(self, deferred: DeferredCommand, client: AsyncWebClient | None) -> None:
        """Do the follow-up work of a command another process acknowledged (a command worker, which has
        set the log context of the acknowledging request)."""
        label = self._label(deferred.text)
        queued = (datetime.now(UTC) - deferred.queued_at).total_seconds()
        log.info("/kerberos %s (acknowledged %.0f ms before, queued for a worker)", label, queued * 1000)
        body = {
            "text": deferred.text,
            "user_id": deferred.user_id,
            "channel_id": deferred.channel_id,
            "team_id": deferred.team_id,
            "api_app_id": deferred.app_id,
        }
        try:
            prepared = self._prepare(body, client)
        except Exception as exc:  # it was valid when acknowledged: the configuration changed in between
            refused = isinstance(exc, KerberosBotError)
            self._services.metrics.commands.labels(label, "refused" if refused else "error").inc()
            reply = error_reply(str(exc)) if refused else _internal_error("preparing queued /kerberos work")
            await self._deliver(deferred.reply_to, [reply])
            return
        if prepared.work is not None:
            await self._run(prepared.work, deferred.reply_to, label)

    async def _now(self, step: Callable[[], Awaitable[None]], response_url: str, label: str) -> None:
        try:
            await step()
        except KerberosBotError as exc:
            self._services.metrics.commands.labels(label, "refused").inc()
            await self._deliver(response_url, [error_reply(str(exc))])
        except Exception:
            self._services.metrics.commands.labels(label, "error").inc()
            await self._deliver(response_url, [_internal_error("/kerberos")])

    async def _run(self, work: Callable[[], Awaitable[list[Reply]]], response_url: str, label: str) -> None:
        outcome = "ok"
        try:
            replies = await work()
        except KerberosBotError as exc:
            outcome = "refused"
            replies = [error_reply(str(exc))]
        except Exception:
            outcome = "error"
            replies = [_internal_error("/kerberos work")]
        self._services.metrics.commands.labels(label, outcome).inc()
        await self._deliver(response_url, replies)

    async def _deliver(self, response_url: str, replies: Sequence[Reply]) -> None:
        for reply in replies:
            try:
                await self._poster.post(response_url, reply.json_body)
            except Exception:
                log.exception("could not deliver a reply through the response URL")


def register(
    app: AsyncApp, services: BotServices, poster: ResponseUrlPoster, queue: CommandQueue | None = None
) -> None:
    listener = KerberosCommand(services, poster, queue=queue)

    async def kerberos(ack: OnceAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await listener(ack, command, client)

    app.command(COMMAND)(guard("/kerberos", kerberos))


if __name__ == "__main__":
    import json

    print(json.dumps(manifest_command(), indent=2))
