"""Change windows read as cron does: fields, names, ranges and steps, the either/or rule of the two day
fields, time zones with their daylight saving changes, and windows that never open refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.windows import ALWAYS_OPEN, ChangeWindows, CronSpec, OutsideWindow, WindowError

WED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_weeknight_window_opens_and_closes_at_its_times() -> None:
    windows = ChangeWindows.parse([("0 22 * * mon-thu", 4)])
    assert not windows.open_at(WED)
    assert windows.next_opening(WED) == at("2026-11-25T22:00")
    assert windows.open_at(at("2026-11-25T22:00")) and windows.open_at(at("2026-11-26T01:59"))
    assert not windows.open_at(at("2026-11-26T02:00"))  # open for 4 hours, not a minute more
    assert windows.closes_after(at("2026-11-25T23:00")) == at("2026-11-26T02:00")
    # Thursday night's window is the last of the week: Friday to Sunday wait for Monday 22:00
    assert windows.next_opening(at("2026-11-27T03:00")) == at("2026-11-30T22:00")
    assert windows.next_opening(at("2026-11-25T23:00")) == at("2026-11-25T23:00")  # open: now


def test_a_window_spans_midnight_into_a_day_its_cron_does_not_name() -> None:
    windows = ChangeWindows.parse([("0 22 * * thu", 6)])
    assert windows.open_at(at("2026-11-27T03:00"))  # Friday morning, inside Thursday's window


def test_names_lists_ranges_and_steps_read_as_cron_reads_them() -> None:
    spec = CronSpec.parse("*/15 8-18/2 * jan,JUL sun,6")
    assert spec.minutes == {0, 15, 30, 45}
    assert spec.hours == {8, 10, 12, 14, 16, 18}
    assert spec.months == {1, 7} and spec.weekdays == {0, 6}
    assert CronSpec.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert CronSpec.parse("5/20 * * * *").minutes == {5, 25, 45}


def test_a_day_of_month_and_a_day_of_week_together_mean_either() -> None:
    # cron: "the 1st, and every Saturday"
    windows = ChangeWindows.parse([("0 2 1 * sat", 1)])
    assert windows.next_opening(WED) == at("2026-11-28T02:00")  # Saturday
    assert windows.next_opening(at("2026-11-29T00:00")) == at("2026-12-01T02:00")  # the 1st, a Tuesday
    only_the_first = ChangeWindows.parse([("0 2 1 * *", 1)])
    assert only_the_first.next_opening(WED) == at("2026-12-01T02:00")


def test_the_cron_expression_is_read_in_the_domains_time_zone_across_daylight_saving() -> None:
    windows = ChangeWindows.parse([("0 22 * * *", 2)], "Europe/Berlin")
    # winter: Berlin is UTC+1; summer: UTC+2
    assert windows.next_opening(at("2026-12-02T12:00")) == at("2026-12-02T21:00")
    assert windows.next_opening(at("2026-07-01T12:00")) == at("2026-07-01T20:00")
    # the night the clocks go back (25 October 2026): still 22:00 local, now an hour later in UTC
    assert windows.next_opening(at("2026-10-24T12:00")) == at("2026-10-24T20:00")
    assert windows.next_opening(at("2026-10-25T12:00")) == at("2026-10-25T21:00")
    assert "Europe/Berlin" in windows.local(at("2026-12-02T21:00")) and "21:00 UTC" in windows.local(
        at("2026-12-02T21:00")
    )


def test_several_windows_open_at_the_earliest_of_them() -> None:
    windows = ChangeWindows.parse([("0 22 * * sat", 4), ("30 6 * * *", 1)])
    assert windows.next_opening(WED) == at("2026-11-26T06:30")
    assert windows.describe() == "0 22 * * sat for 4 h; 30 6 * * * for 1 h (UTC)"


def test_no_windows_is_always_open() -> None:
    assert ALWAYS_OPEN.open_at(WED) and ALWAYS_OPEN.next_opening(WED) == WED
    assert ALWAYS_OPEN.describe() == "always open"


@pytest.mark.parametrize(
    ("cron", "hours", "timezone", "says"),
    [
        ("0 22 * *", 4, "UTC", "has 4 fields"),
        ("60 22 * * *", 4, "UTC", "minute: 60 is outside 0-59"),
        ("0 22 * * funday", 4, "UTC", "day-of-week: 'funday' is not a number or a name"),
        ("0 22-20 * * *", 4, "UTC", "runs backwards"),
        ("*/0 22 * * *", 4, "UTC", "step"),
        ("0 22 * * *", 0, "UTC", "from a minute to 7 days"),
        ("0 22 * * *", 200, "UTC", "from a minute to 7 days"),
        ("0 22 * * *", 4, "Mars/Olympus", "not a time zone name"),
        ("0 0 30 feb *", 1, "UTC", "never opens"),
    ],
)
def test_a_window_that_cannot_be_read_says_which_part_and_why(
    cron: str, hours: float, timezone: str, says: str
) -> None:
    with pytest.raises(WindowError, match=says):
        ChangeWindows.parse([(cron, hours)], timezone)


def test_the_policy_outside_the_windows_is_wait_or_refuse() -> None:
    assert ChangeWindows.parse([("0 22 * * *", 1)]).outside is OutsideWindow.WAIT
    assert ChangeWindows.parse([("0 22 * * *", 1)], outside="refuse").outside is OutsideWindow.REFUSE
    with pytest.raises(ValueError):
        ChangeWindows.parse([("0 22 * * *", 1)], outside="sometimes")
    assert ChangeWindows.parse([("0 0 29 2 *", 1)]).next_opening(WED) == at("2028-02-29T00:00")
    assert timedelta(hours=1) == ChangeWindows.parse([("0 0 29 2 *", 1)]).windows[0].length
