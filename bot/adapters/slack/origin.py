"""Where a request the bot files itself comes from: "<team>/<app>/<channel>", the origin a click on its
card must carry (the same rule as for a request typed in the channel). The team is the bot token's
(``auth.test``), the app the bot user's (``bots.info``, scope users:read); both read once."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.errors import KerberosBotError


class SlackOrigins:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._team_and_app: tuple[str, str] | None = None

    async def origin_of(self, channel: str) -> str:
        if self._team_and_app is None:
            try:
                who = await self._client.auth_test()
                bot = await self._client.bots_info(bot=str(who.get("bot_id") or ""))
            except SlackApiError as exc:
                raise KerberosBotError(
                    f"Slack did not say which workspace and app the bot is ({exc.response.get('error')}); "
                    "a request the bot files needs them, so that its card's buttons count only there"
                ) from exc
            app = str((bot.get("bot") or {}).get("app_id") or "")
            team = str(who.get("team_id") or "")
            if not (team and app):
                raise KerberosBotError("Slack did not say which workspace and app the bot is (auth.test, bots.info)")
            self._team_and_app = (team, app)
        team, app = self._team_and_app
        return f"{team}/{app}/{channel}"
