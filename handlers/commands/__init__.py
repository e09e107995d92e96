"""The ``/kerberos`` subcommands.

Each subcommand is a module here with ``NAME``, ``USAGE``, ``ORDER`` and ``prepare()``; the first line
of its docstring is its help text. They are discovered (``discover()``): adding a subcommand is adding
its module, and help, the router and the Slack manifest's usage hint follow. ``prepare`` validates at
once (Slack wants an answer within 3 s) and returns the acknowledgement plus the slow work, which the
router runs after acknowledging.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from types import ModuleType

from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError, UsageError
from bot.services.changes.engine import ChangeEngine
from bot.services.container import BotServices
from bot.services.verification import SignInFor, SignInLink
from handlers.parsing import ParsedCommand
from handlers.replies import Reply


@dataclass(frozen=True)
class CommandContext:
    user_id: str
    channel_id: str
    services: BotServices
    catalog: tuple[tuple[str, str], ...] = ()  # (usage, summary) of every subcommand, for help
    client: AsyncWebClient | None = None  # the Web API, for subcommands that post messages
    team_id: str = ""
    app_id: str = ""
    trigger_id: str = ""  # lets a command open a modal, within 3 seconds of it

    @property
    def origin(self) -> str:
        """Where a request is made, and so the only place its approvals may come from."""
        return f"{self.team_id}/{self.app_id}/{self.channel_id}"

    def in_channel(self, channel_id: str) -> CommandContext:
        """The same person and workspace, in another channel (a domain's approvals channel)."""
        return replace(self, channel_id=channel_id)


@dataclass(frozen=True)
class Prepared:
    ack: Reply | None  # None: acknowledge with an empty body
    work: Callable[[], Awaitable[list[Reply]]] | None = None
    # done right after the acknowledgement, in this process, never queued (opening a modal: its trigger lasts 3 s)
    now: Callable[[], Awaitable[None]] | None = None


Prepare = Callable[[ParsedCommand, CommandContext], Prepared]


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    prepare: Prepare

    @classmethod
    def from_module(cls, module: ModuleType) -> Subcommand:
        doc = (module.__doc__ or "").strip().splitlines()
        return cls(name=module.NAME, usage=module.USAGE, summary=doc[0] if doc else "", prepare=module.prepare)


def discover() -> tuple[Subcommand, ...]:
    """Every module of this package that is a subcommand (NAME, USAGE, ORDER, prepare), in ORDER."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, attribute) for attribute in ("NAME", "USAGE", "ORDER", "prepare")):
            found.append(module)
    return tuple(Subcommand.from_module(m) for m in sorted(found, key=lambda m: int(m.ORDER)))


async def sign_in_for(ctx: CommandContext, binding: SignInFor) -> SignInLink:
    """The browser sign-in made for ``binding`` (a freeze or its end, where the policy asks one)."""
    verification = ctx.services.verification
    if verification is None or not verification.uses_browser:
        raise KerberosBotError("The policy asks a verified sign-in for this, but the approvers' sign-in is not set up.")
    return await verification.begin_browser(binding)


def require_changes(ctx: CommandContext) -> tuple[ChangeEngine, AsyncWebClient]:
    """The change service and the Web API, or a clear refusal when no approval store is configured."""
    if ctx.services.changes is None or ctx.client is None:
        raise KerberosBotError("Changes are switched off: the bot has no approval store (REDIS_URL) configured.")
    return ctx.services.changes, ctx.client


def one_request(
    command: ParsedCommand, ctx: CommandContext, usage: str, ask: str = "Name the request"
) -> tuple[str, ChangeEngine, AsyncWebClient]:
    """The one request id a command names, and nothing else, with the change service and the Web API."""
    if len(command.args) != 1 or command.flags or command.options:
        raise UsageError(f"{ask}: `/kerberos {usage}`.")
    changes, client = require_changes(ctx)
    return command.args[0], changes, client
