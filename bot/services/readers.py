"""Who may read the domains' state: their status (each one runs the module on the management host), the
history of their changes, the open requests, the home page's domains. By default anyone in a channel the
bot is in; with ``[policy] reader_groups``, the members of those groups and every approver."""

from __future__ import annotations

from bot.domain.approvals import GroupDirectory
from bot.services.changes.errors import NotAllowed


class Readers:
    def __init__(
        self,
        groups: frozenset[str] = frozenset(),
        *,
        directory: GroupDirectory | None = None,
        approver_groups: frozenset[str] = frozenset(),
    ) -> None:
        self.groups = groups  # empty: anyone may read
        self._directory = directory
        self._approver_groups = approver_groups

    async def may_read(self, user: str) -> bool:
        if not self.groups:
            return True
        if self._directory is None:  # no group directory to ask: nobody is known to be a reader
            return False
        for group in self.groups | self._approver_groups:
            if user in await self._directory.members(group):
                return True
        return False

    async def check(self, user: str) -> None:
        if not await self.may_read(user):
            raise NotAllowed(
                "Only the members of this bot's reader groups and its approvers may read the domains' status, "
                "history and requests. Ask your Kerberos admins to add you to a reader group."
            )
