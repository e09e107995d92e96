"""The buttons on request cards: Approve (with its verified sign-in), Deny (with its dialog), and in
operator-executes mode Take it over."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.services.changes.engine import ChangeEngine
from bot.services.verification import ApproverVerification
from handlers.actions import approve, deny, take_over


def register(app: AsyncApp, changes: ChangeEngine, verification: ApproverVerification | None = None) -> None:
    approve.register(app, changes, verification)
    deny.register(app, changes)
    take_over.register(app, changes)
