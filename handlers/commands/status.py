"""Show the Entra Kerberos server of a domain (all configured domains without one) and what is wrong."""

from __future__ import annotations

from functools import lru_cache

from bot.domain.errors import UsageError
from bot.services.single_flight import SingleFlight
from bot.services.status import StatusService
from handlers.commands import CommandContext, Prepared
from handlers.parsing import ParsedCommand
from handlers.replies import Reply, text_reply
from handlers.views.status import status_replies

NAME = "status"
ORDER = 10  # where it shows in help and in the manifest
_renderings: SingleFlight[list[Reply]] = SingleFlight()


async def _render(service: StatusService, domain: str | None, per_dc: bool) -> list[Reply]:
    replies = status_replies(await service.status(domain, per_dc=per_dc))
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
        # identical requests in flight share one read and one rendering
        key = (id(service), tuple(domains), per_dc)
        return await _renderings.run(key, lambda: _render(service, domain, per_dc))

    return Prepared(ack=_checking(tuple(domains)), work=work)


@lru_cache(maxsize=128)
def _checking(domains: tuple[str, ...]) -> Reply:
    # configured names only (resolve() refused any other), so nothing typed is echoed here
    return text_reply(f"Checking the Kerberos server of {', '.join(domains)}…", icon=":mag:")
