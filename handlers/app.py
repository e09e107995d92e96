"""The slack-bolt app with every listener registered: the /kerberos command, the card buttons, the last resort."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.ports import CommandQueue
from bot.services.container import BotServices
from handlers import actions, router
from handlers import home as home_handlers
from handlers.actions import request_form
from handlers.boundary import register_last_resort
from handlers.home import SlackHome
from handlers.responder import ResponseUrlPoster
from handlers.views.request_form import DEFAULT_TICKET_PATTERN


class _TokenFromTheClient(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself when it is given no token, and then warns, at every start, that the
    client's token wins over it: the bot gives its token through the client alone, so that line tells an
    operator nothing and only teaches them to ignore warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("As you gave `client` as well, `token` will be unused")


_QUIET_ABOUT_THE_TOKEN = _TokenFromTheClient()


def build_bolt_app(
    *,
    signing_secret: str,
    client: AsyncWebClient,
    services: BotServices,
    poster: ResponseUrlPoster | None = None,
    command_queue: CommandQueue | None = None,
    logger: logging.Logger | None = None,
    home: SlackHome | None = None,
) -> AsyncApp:
    """Everything is passed explicitly: ``AsyncApp()`` would otherwise read SLACK_* itself.

    With a ``command_queue`` the commands' follow-up work is queued for the command workers."""
    logger = logger or logging.getLogger("kerberos_bot.slack")
    logger.addFilter(_QUIET_ABOUT_THE_TOKEN)  # once: the same filter is not added twice
    app = AsyncApp(
        signing_secret=signing_secret,
        client=client,  # carries the token; Bolt authorizes with it
        # Acknowledge first, then do the slow work: Slack gives a command 3 seconds. Every listener runs
        # inside handlers.boundary.guard, which returns at the acknowledgement and carries the work on in
        # a task; Bolt then answers at once instead of polling for the acknowledgement every 10 ms.
        process_before_response=True,
        logger=logger,
        # HTTP requests reach Bolt only through bot.entrypoints.web's gate, which has verified the signature on
        # the raw bytes (and refused replays); Socket Mode carries no signature
        request_verification_enabled=False,
    )
    register_last_resort(app)
    router.register(app, services, poster or ResponseUrlPoster(), command_queue)
    if services.changes is not None:
        actions.register(app, services.changes, services.verification)
        request_form.register(app, services, services.ticket_pattern or DEFAULT_TICKET_PATTERN)
        if home is not None:
            home_handlers.register(app, home, services.changes, services.verification)
    return app
