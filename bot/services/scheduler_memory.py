"""The scheduler's memory, signed: what it filed and what the watch saw decide what it does next (whether a
rotation is filed again, which findings are new), so a value written by anything but the bot never
counts. A value that does not verify (forged, or not even JSON) is treated as nothing remembered: the
scheduler then does its work again (a request approvers see, a finding reported again), never less, and
a crafted value can no longer silence the cadence or the watch, or stop the scheduler."""

from __future__ import annotations

import json
import logging

from bot.domain.integrity import Signer
from bot.domain.ports import SchedulerMemory

log = logging.getLogger(__name__)


class SignedMemory:
    """``SchedulerMemory`` over another: signs what it remembers, verifies what it recalls."""

    def __init__(self, memory: SchedulerMemory, signer: Signer) -> None:
        self._memory = memory
        self._signer = signer

    async def remember(self, name: str, value: str) -> None:
        mac = self._signer.text_mac(f"memory:{name}", value)
        await self._memory.remember(name, json.dumps({"value": value, "mac": mac}))

    async def recall(self, name: str) -> str | None:
        raw = await self._memory.recall(name)
        if raw is None:
            return None
        try:
            envelope = json.loads(raw)
            value, mac = str(envelope["value"]), str(envelope["mac"])
        except (ValueError, KeyError, TypeError):
            value, mac = "", ""
        if not mac or not self._signer.text_is_ours(f"memory:{name}", value, mac):
            log.error("the scheduler's memory of %s does not carry the bot's signature; taken as nothing", name[:60])
            return None
        return value
