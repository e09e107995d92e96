"""The services the Slack handlers may use; built by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain.gpo import KdcProxySetting
from bot.domain.ports import NoticePreferences
from bot.observability.metrics import Metrics
from bot.services.changes.engine import ChangeEngine
from bot.services.home import HomeService
from bot.services.readers import Readers
from bot.services.status import StatusService
from bot.services.verification import ApproverVerification


@dataclass(frozen=True)
class BotServices:
    status: StatusService
    changes: ChangeEngine | None = None  # None: no Redis configured, the changing actions are off
    kdc_proxy: KdcProxySetting | None = None
    verification: ApproverVerification | None = None  # None: no action needs verified approvals
    metrics: Metrics = field(default_factory=Metrics.create)  # what the handlers count
    alert_channel: str | None = None  # told of every emergency rotation ([lifecycle] alert_channel)
    preferences: NoticePreferences | None = None  # who turned their direct messages off (None: nobody can)
    ticket_pattern: str | None = None  # what the request form accepts as a ticket number (None: the built-in)
    home: HomeService | None = None  # each person's home page (None: no changes, so nothing to show)
    readers: Readers = field(default_factory=Readers)  # who may read status, history and requests (default: anyone)
