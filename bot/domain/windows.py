"""Change windows: when a domain takes changes, as cron expressions that open a window of some length.

A window opens at every time its cron expression names (``minute hour day-of-month month day-of-week``,
read in the domain's time zone, with cron's rule that a restricted day-of-month and a restricted
day-of-week are either/or) and stays open for its duration. A domain without windows is always open.
An approved change outside every window waits for the next opening or is refused, per the domain's
policy; break-glass runs at once and says that it ran outside the window.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_NAMES = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "day-of-week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_FIELDS = (  # name, lowest, highest
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),  # 0 and 7 are both Sunday
)
# how far ahead an opening is looked for: a yearly window (29 February aside) opens within this
_HORIZON_DAYS = 366 * 4 + 1


def _zone(name: str) -> tzinfo:
    # UTC needs no time zone database (a slim image may have none)
    return UTC if name in ("UTC", "Etc/UTC") else ZoneInfo(name)


class WindowError(ValueError):
    """A window the configuration gives that cannot be read; the message says which part and why."""


def _number(text: str, field: str, low: int, high: int) -> int:
    names = _NAMES.get(field)
    if names is not None and text.lower() in names:
        return names.index(text.lower()) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise WindowError(f"{field}: '{text}' is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise WindowError(f"{field}: {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int) -> tuple[frozenset[int], bool]:
    """The values one field allows, and whether it was restricted (anything but ``*``)."""
    values: set[int] = set()
    for part in text.split(","):
        spec, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise WindowError(f"{field}: the step in '{part}' must be a whole number above 0")
            step = int(step_text)
        if spec == "*":
            first, last = low, high
        elif "-" in spec:
            start, _, end = spec.partition("-")
            first, last = _number(start, field, low, high), _number(end, field, low, high)
            if first > last:
                raise WindowError(f"{field}: the range '{spec}' runs backwards")
        else:
            first = _number(spec, field, low, high)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    if field == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values), text != "*"


@dataclass(frozen=True)
class CronSpec:
    """The times a cron expression names (to the minute)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as cron counts
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSpec:
        parts = expression.split()
        if len(parts) != 5:
            raise WindowError(
                f"'{expression}' has {len(parts)} fields; a cron expression has five: minute hour day-of-month "
                "month day-of-week (e.g. '0 22 * * mon-thu')"
            )
        parsed = [_field(text, name, low, high) for text, (name, low, high) in zip(parts, _FIELDS, strict=True)]
        (minutes, _), (hours, _), (days, days_r), (months, _), (weekdays, weekdays_r) = parsed
        return cls(" ".join(parts), minutes, hours, days, months, weekdays, days_r, weekdays_r)

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week  # cron: either restricted day field is enough
        return in_month and in_week


@dataclass(frozen=True)
class ChangeWindow:
    """Open for ``length`` from every time ``cron`` names."""

    cron: CronSpec
    length: timedelta

    @classmethod
    def parse(cls, cron: str, hours: float) -> ChangeWindow:
        length = timedelta(minutes=round(hours * 60))
        if not timedelta(minutes=1) <= length <= timedelta(days=7):
            raise WindowError(f"a window of {hours:g} hours: it must last from a minute to 7 days")
        return cls(CronSpec.parse(cron), length)

    def describe(self) -> str:
        hours = self.length.total_seconds() / 3600
        return f"{self.cron.expression} for {hours:g} h"


class OutsideWindow(enum.Enum):
    """What happens to a change approved while its domain's windows are closed."""

    WAIT = "wait"  # it runs at the next opening (the card says when)
    REFUSE = "refuse"  # it is refused, nothing changed: request it again within a window


@dataclass(frozen=True)
class ChangeWindows:
    """A domain's windows, the time zone their cron expressions are read in, and the policy outside them."""

    windows: tuple[ChangeWindow, ...]
    timezone: str = "UTC"
    outside: OutsideWindow = OutsideWindow.WAIT

    @classmethod
    def parse(cls, windows: Sequence[tuple[str, float]], timezone: str = "UTC", outside: str = "wait") -> ChangeWindows:
        try:
            _zone(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise WindowError(f"'{timezone}' is not a time zone name such as Europe/Berlin or UTC") from exc
        parsed = cls(
            tuple(ChangeWindow.parse(cron, hours) for cron, hours in windows), timezone, OutsideWindow(outside)
        )
        for window in parsed.windows:  # each one: a window that never opens is a mistake, even beside others
            if ChangeWindows((window,), timezone).next_opening(datetime(2000, 1, 1, tzinfo=UTC)) is None:
                raise WindowError(f"the window {window.describe()} never opens")
        return parsed

    @property
    def zone(self) -> tzinfo:
        return _zone(self.timezone)

    def _starts(self, window: ChangeWindow, since: datetime, until: datetime) -> Iterator[datetime]:
        """The window's openings in [since, until], in order (UTC)."""
        zone = self.zone
        day = since.astimezone(zone).date() - timedelta(days=1)  # a zone's offset can move a start a day
        last = until.astimezone(zone).date() + timedelta(days=1)
        cron = window.cron
        while day <= last:
            if cron.matches_day(day):
                for hour in sorted(cron.hours):
                    for minute in sorted(cron.minutes):
                        start = datetime.combine(day, time(hour, minute), zone).astimezone(UTC)
                        if since <= start <= until:
                            yield start
            day += timedelta(days=1)

    def open_at(self, at: datetime) -> bool:
        """Within a window at ``at`` (always, for a domain without windows)."""
        if not self.windows:
            return True
        # a window is open from its start up to, not including, its end
        return any(s + w.length > at for w in self.windows for s in self._starts(w, at - w.length, at))

    def closes_after(self, at: datetime) -> datetime | None:
        """When the window open at ``at`` closes (the latest end of the windows open then)."""
        ends = [s + w.length for w in self.windows for s in self._starts(w, at - w.length, at) if s + w.length > at]
        return max(ends, default=None)

    def next_opening(self, at: datetime) -> datetime | None:
        """``at`` itself when a window is open then, else the next opening; None when none comes."""
        if self.open_at(at):
            return at
        found = [next(self._starts(w, at, at + timedelta(days=_HORIZON_DAYS)), None) for w in self.windows]
        return min((s for s in found if s is not None), default=None)

    def describe(self) -> str:
        if not self.windows:
            return "always open"
        return "; ".join(w.describe() for w in self.windows) + f" ({self.timezone})"

    def local(self, at: datetime) -> str:
        """``at`` as people of the domain read it, with UTC beside it when the zone is another."""
        local = at.astimezone(self.zone)
        utc = f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        if self.timezone in ("UTC", "Etc/UTC"):
            return utc
        return f"{local:%a %Y-%m-%d %H:%M} {self.timezone} ({utc})"


ALWAYS_OPEN = ChangeWindows(())
