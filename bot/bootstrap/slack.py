"""The Slack side of the bot and the workers of one process, wired around the services: the Bolt app, the
sign-in routes, the watchers that tell requesters and redraw home pages, the change worker, the scheduler,
the audit forwarder and the command workers."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.redis.keys import KEYSPACE
from bot.adapters.slack.groups import SlackProfiles, SlackUserGroups
from bot.adapters.slack.origin import SlackOrigins
from bot.adapters.slack.web import PacedWebClient, SharedChannelPacing
from bot.bootstrap.adapters import slack_client
from bot.bootstrap.components import ChatPeople, Components, Surroundings, build_components
from bot.bootstrap.storage import Storage
from bot.config import SLACK_API_DEFAULT, BotConfig
from bot.domain.errors import ConfigurationError
from bot.entrypoints.web import READY_CACHE_SECONDS, build_health_app, build_web_app
from bot.services.container import BotServices
from bot.workers.audit import AuditForwarding
from bot.workers.changes import ChangeWorker
from bot.workers.commands import CommandWorker
from bot.workers.scheduler import LifecycleScheduler
from handlers.app import build_bolt_app
from handlers.boundary import IN_FLIGHT
from handlers.home import SlackHome
from handlers.notices.direct import SlackRequesterMessages
from handlers.notices.scheduler import SlackLifecycleNotices
from handlers.notices.worker import SlackChangeNotices
from handlers.responder import ResponseUrlPoster, response_origins
from handlers.router import KerberosCommand
from handlers.sign_in_page import sign_in_routes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackAccess:
    """How the bot reaches Slack and knows Slack's requests (HTTP mode signs them)."""

    bot_token: str
    signing_secret: str
    api_url: str = SLACK_API_DEFAULT


@dataclass(frozen=True)
class WorkerPlan:
    """Which workers run in this process, and how the Bolt app hands work to them."""

    changes: bool = True  # a change worker: carries out approved requests, sweeps expired ones
    command_workers: int = 0  # command workers in this process (``kerberos-bot worker``, the sandbox)
    queue_commands: bool = False  # commands' follow-up work goes to the queue (for workers here or elsewhere)
    name: str = "worker-1"  # the change worker's name in the journal (host and pid tell replicas apart)
    follow_key_every: timedelta = timedelta(minutes=5)
    follow_key_for: timedelta = timedelta(hours=8)
    command_block_ms: int = 1000
    clock: Callable[[], datetime] | None = None  # the scheduler's (tests move it); default: the services'


@dataclass
class Bot:
    """The wired bot: the Slack app, the routes beside it and the workers of this process; ``components``
    are the adapters it was built on (``None`` when the caller brought the services, as the handler tests do)."""

    services: BotServices
    client: AsyncWebClient
    bolt: AsyncApp
    routes: list[web.RouteDef]
    poster: ResponseUrlPoster
    signing_secret: str
    components: Components | None = None
    change_worker: ChangeWorker | None = None
    command_workers: list[CommandWorker] = field(default_factory=list)
    scheduler: LifecycleScheduler | None = None
    audit_forwarding: AuditForwarding | None = None

    def web_app(self) -> web.Application:
        """The Slack listener (``/slack/events``, the sign-in callback) behind the signature gate."""
        return build_web_app(
            self.bolt,
            signing_secret=self.signing_secret,
            replay_guard=self.components.storage.replay_guard if self.components else None,
            routes=self.routes,
            metrics=self.services.metrics,
        )

    def health_app(self, cache_seconds: float = READY_CACHE_SECONDS) -> web.Application:
        """The health listener: /healthz, /readyz (this bot's checks) and /metrics (its registry)."""
        return build_health_app(self.readiness, cache_seconds=cache_seconds, metrics=self.services.metrics)

    async def readiness(self) -> dict[str, str]:
        return await self.components.readiness() if self.components else {}

    def start(self) -> None:
        if isinstance(self.client, PacedWebClient):  # one kept-alive session for every Web API call
            self.client.keep_connections()
        if self.change_worker is not None:
            self.change_worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.audit_forwarding is not None:
            self.audit_forwarding.start()
        for worker in self.command_workers:
            worker.start()

    async def aclose(self) -> None:
        """Stops the workers (finishing the replies already started), then releases every connection."""
        if self.scheduler is not None:
            await self.scheduler.stop()  # gives the lead up: another replica takes over at once
        if self.audit_forwarding is not None:
            await self.audit_forwarding.stop()
        if self.change_worker is not None:
            await self.change_worker.stop()
        await asyncio.gather(*(worker.stop() for worker in self.command_workers))
        if not await IN_FLIGHT.drain():  # a click or command Bolt still carries on after its acknowledgement
            log.warning("closing with Slack listeners still at work")
        if self.services.changes is not None:  # what a click or a change is still telling its watchers
            await self.services.changes.watchers.drain()
        await self.poster.close()
        if isinstance(self.client, PacedWebClient):
            await self.client.close_connections()
        if self.components is not None:
            await self.components.aclose()


def build_bot(
    config: BotConfig,
    slack: SlackAccess,
    *,
    surroundings: Surroundings | None = None,
    storage: Storage | None = None,
    people: ChatPeople | None = None,
    redis_url: str | None = None,
    store_prefix: str = KEYSPACE,
    workers: WorkerPlan = WorkerPlan(),
) -> Bot:
    """Everything one process runs, from the configuration (and any port a test or the sandbox gives)."""
    client = slack_client(slack.bot_token, slack.api_url)
    people = people or ChatPeople()
    people = ChatPeople(
        groups=people.groups or SlackUserGroups(client),
        profiles=people.profiles or SlackProfiles(client),
        origins=people.origins or SlackOrigins(client),
    )
    components = build_components(
        config,
        surroundings=surroundings,
        storage=storage,
        people=people,
        redis_url=redis_url,
        store_prefix=store_prefix,
    )
    return assemble_bot(components.services, slack, workers=workers, components=components, client=client)


def assemble_bot(
    services: BotServices,
    slack: SlackAccess,
    *,
    workers: WorkerPlan = WorkerPlan(),
    components: Components | None = None,
    client: AsyncWebClient | None = None,
) -> Bot:
    """The Slack side and the workers around services already built (``build_bot``'s, or a test's)."""
    client = client or slack_client(slack.bot_token, slack.api_url)
    if isinstance(client, PacedWebClient) and components is not None and components.storage.limiter is not None:
        # a channel's pace kept by every replica together, through the store they share
        client.pacing = SharedChannelPacing(components.storage.limiter)
    poster = ResponseUrlPoster(origins=response_origins(slack.api_url))
    queue = components.storage.command_queue if components is not None else None
    home = SlackHome(client, services.home, services.changes) if services.home and services.changes else None
    bolt = build_bolt_app(
        signing_secret=slack.signing_secret,
        client=client,
        services=services,
        poster=poster,
        command_queue=queue if workers.queue_commands else None,
        home=home,
    )
    routes = sign_in_routes(services.verification, services.changes, client, services.alert_channel)
    if services.changes is not None:  # every requester hears what becomes of their requests
        services.changes.watchers.add(SlackRequesterMessages(client, services.preferences))
        if home is not None:  # and the home pages show it
            services.changes.watchers.add(home)
    change_worker = None
    if workers.changes and services.changes is not None:
        change_worker = ChangeWorker(
            services.changes,
            SlackChangeNotices(client, services.changes, services.alert_channel),
            workers.name,
            follow_interval=workers.follow_key_every,
            follow_for=workers.follow_key_for,
        )
    scheduler = None
    lifecycle = components.lifecycle if components is not None else None
    if workers.changes and services.changes is not None and lifecycle is not None and components is not None:
        assert components.storage.leadership is not None  # built with the lifecycle
        timing = components.scheduling
        scheduler = LifecycleScheduler(
            lifecycle,
            components.storage.leadership,
            SlackLifecycleNotices(
                client, services.changes, services.alert_channel, on_finding=home.redraw if home else None
            ),
            workers.name,
            clock=workers.clock or components.clock,
            tick=timedelta(seconds=timing.tick_seconds),
            lease=timedelta(seconds=timing.lease_seconds),
            watch_every=timedelta(minutes=timing.watch_every_minutes),
            digest_every=timedelta(days=timing.digest_every_days) if timing.digest_every_days else None,
        )
    audit_forwarding = None
    if workers.changes and components is not None and components.storage.audit is not None:
        audit_forwarding = AuditForwarding(components.storage.audit, components.audit_every)
    command_workers = []
    if workers.command_workers:
        if queue is None:
            raise ConfigurationError("REDIS_URL: a command worker takes its commands from Redis")
        listener = KerberosCommand(services, poster)
        work = functools.partial(listener.work_on, client=client)
        for index in range(1, workers.command_workers + 1):
            name = workers.name if workers.command_workers == 1 else f"{workers.name}-{index}"
            command_workers.append(CommandWorker(work, queue, name, block_ms=workers.command_block_ms))
    return Bot(
        services,
        client,
        bolt,
        routes,
        poster,
        slack.signing_secret,
        components,
        change_worker,
        command_workers,
        scheduler,
        audit_forwarding,
    )


@asynccontextmanager
async def running_bot(bot: Bot) -> AsyncIterator[Bot]:
    """The bot's workers running while inside; everything stopped and released on the way out."""
    try:
        bot.start()
        yield bot
    finally:
        await bot.aclose()
