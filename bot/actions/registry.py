"""Every action kind's spec, collected from the family modules; one missing fails at import, so no action
can reach the executor without its own pre-flight and carry-out."""

from __future__ import annotations

from bot.actions import removal, review, rotation, setup
from bot.actions.base import ActionSpec
from bot.domain.approvals import Action

ACTION_SPECS: dict[Action, ActionSpec] = {
    spec.action: spec for spec in (*rotation.SPECS, *setup.SPECS, *removal.SPECS, *review.SPECS)
}

_missing = set(Action) - set(ACTION_SPECS)
if _missing:  # pragma: no cover: a kind added to the enum without its module's spec
    raise ImportError(f"action kinds without a spec in bot/actions: {sorted(a.value for a in _missing)}")
