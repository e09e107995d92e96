"""The command queue, signed: every entry carries the bot's MAC over all its fields, and an entry that does
not verify is dropped unrun. A queue entry is run as the user it names and answered at the address it
gives, so an entry written to Redis by anyone else must never run (issue: one stream entry froze a domain
in an approver's name and sent the reply to an address of the writer's choosing)."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot.domain.integrity import Signer
from bot.domain.ports import CommandQueue, DeferredCommand

log = logging.getLogger(__name__)


class SignedCommandQueue:
    """``CommandQueue`` over another: signs what it puts, verifies what it takes."""

    def __init__(self, queue: CommandQueue, signer: Signer) -> None:
        self.inner = queue  # the queue it signs for (an operator's tools read its backlog)
        self._queue = queue
        self._signer = signer

    async def put(self, command: DeferredCommand) -> None:
        await self._queue.put(replace(command, mac=self._signer.command_mac(command)))

    async def take(self, consumer: str, *, count: int, block_ms: int) -> list[DeferredCommand]:
        taken = await self._queue.take(consumer, count=count, block_ms=block_ms)
        ours = [c for c in taken if self._signer.command_is_ours(c)]
        if len(ours) < len(taken):
            # nothing of the entry's text: it is not the bot's, and a log line is no place for it
            log.error(
                "dropped %d queued command(s) without the bot's signature: something else writes to the queue",
                len(taken) - len(ours),
            )
        return ours
