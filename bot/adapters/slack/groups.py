"""The GroupDirectory port served by Slack user groups (``usergroups.users.list``).

The only adapter that speaks Slack, so it lives with the Slack transport. Memberships are cached
briefly: a click should not cost a Web API call each time, and a removal takes effect within a minute.
"""

from __future__ import annotations

import time

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError

CACHE_SECONDS = 60.0
_SCOPE_ERRORS = frozenset({"missing_scope", "not_allowed_token_type", "no_permission", "invalid_auth"})


class GroupsUnavailable(KerberosBotError):
    """Slack's user groups could not be read: nobody's membership can be decided."""


class SlackUserGroups:
    def __init__(self, client: AsyncWebClient, cache_seconds: float = CACHE_SECONDS) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group_id: str) -> frozenset[str]:
        cached = self._cache.get(group_id)
        if cached and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        try:
            response = await self._client.usergroups_users_list(usergroup=group_id)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            hint = "the bot needs the usergroups:read scope" if error in _SCOPE_ERRORS else "try again in a minute"
            raise GroupsUnavailable(
                f"Slack did not list the members of user group {group_id} ({error}), so the bot cannot tell "
                f"who may approve; nothing was changed ({hint})."
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise GroupsUnavailable(
                f"Slack's Web API did not answer when the bot read user group {group_id}, so it cannot tell who "
                "may approve; nothing was changed. Try again in a minute."
            ) from exc
        users = frozenset(str(u) for u in response.get("users") or [])
        self._cache[group_id] = (time.monotonic(), users)
        return users


class SlackProfiles:
    """The ChatProfiles port: the e-mail address on a Slack user's profile (``users.info``; needs the
    users:read and users:read.email scopes). Used only to match approvers to their Entra account."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def email_of(self, chat_user: str) -> str | None:
        try:
            response = await self._client.users_info(user=chat_user)
        except SlackApiError as exc:
            raise KerberosBotError(
                f"Slack did not show the profile of {chat_user} ({exc.response.get('error')}); matching approvers by "
                "e-mail needs the users:read and users:read.email scopes, or map them in [approvals.verification]."
            ) from exc
        user = response.get("user") or {}
        email = (user.get("profile") or {}).get("email")
        return str(email) if email else None
