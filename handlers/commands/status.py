"""Show the Entra Kerberos server of a domain (all configured domains without one) and what is wrong."""

from __future__ import annotations

import contextlib
from functools import lru_cache

from bot.domain.errors import KerberosBotError, UsageError
from bot.services.changes.engine import ChangeEngine
from bot.services.single_flight import SingleFlight
from bot.services.status import StatusService
from handlers.commands import CommandContext, Prepared
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply
from handlers.views.status import status_replies

NAME = "status"
ORDER = 10  # where it shows in help and in the manifest
_renderings: SingleFlight[list[Reply]] = SingleFlight()


async def _render(
    service: StatusService, changes: ChangeEngine | None, domain: str | None, per_dc: bool
) -> list[Reply]:
    statuses = await service.status(domain, per_dc=per_dc)
    freezes = {}
    if changes is not None:  # a frozen domain says so beside its status
        for status in statuses:
            with contextlib.suppress(KerberosBotError):  # the store down: the status still shows
                freezes[status.domain] = await changes.holds.freeze_of(status.domain)
    replies = status_replies(statuses, {d: f for d, f in freezes.items() if f is not None})
    for reply in replies:
        reply.payload()  # validate and serialise once, for every caller sharing this rendering
    return replies


USAGE = "status [domain] [--dcs]"


def prepare(command: ParsedCommand, ctx: CommandContext) -> Prepared:
    if len(command.args) > 1:
        raise UsageError(f"`status` takes at most one domain; usage: `/kerberos {USAGE}`.")
    unknown = command.flags - {"dcs"}
    if unknown:
        raise UsageError(
            f"`status` takes only `--dcs` (KeyVersion on each DC); got `--{'`, `--'.join(sorted(unknown))}`."
        )
    per_dc = "dcs" in command.flags
    service = ctx.services.status
    domain = command.args[0] if command.args else None
    domains = service.resolve(domain)  # an unknown domain is refused before acknowledging

    async def work() -> list[Reply]:
        await ctx.services.readers.check(ctx.user_id)  # [policy] reader_groups, where set
        await service.allow(ctx.user_id)  # each status calls the module on the management host
        # identical requests in flight share one read and one rendering
        key = (id(service), tuple(domains), per_dc)
        return await _renderings.run(key, lambda: _render(service, ctx.services.changes, domain, per_dc))

    return Prepared(ack=_checking(tuple(domains)), work=work)


@lru_cache(maxsize=128)
def _checking(domains: tuple[str, ...]) -> Reply:
    # configured names only (resolve() refused any other), so nothing typed is echoed here
    return text_reply(f"Checking the Kerberos server of {', '.join(domains)}…", icon=":mag:")
