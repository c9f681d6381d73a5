"""Business hours and response targets: when a reply is due."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage.desk.hours import Desk, Hours, SlaRule, Target, parse_target

BERLIN = Hours(zone=ZoneInfo("Europe/Berlin"), start=time(9), end=time(17))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_business_hours_skip_nights_and_weekends_in_the_desks_zone() -> None:
    # Friday 27 Nov 2026, 16:00 in Berlin = 15:00 UTC: one hour left that day.
    assert BERLIN.add(utc(2026, 11, 27, 15), timedelta(hours=8)) == utc(2026, 11, 30, 15)
    # Saturday mail waits for Monday 09:00 Berlin (08:00 UTC).
    assert BERLIN.add(utc(2026, 11, 28, 12), timedelta(hours=1)) == utc(2026, 11, 30, 9)
    # Before opening: counted from 09:00.
    assert BERLIN.add(utc(2026, 12, 1, 5), timedelta(minutes=30)) == utc(2026, 12, 1, 8, 30)
    # Exactly at closing: the next day.
    assert BERLIN.add(utc(2026, 12, 1, 16), timedelta(hours=1)) == utc(2026, 12, 2, 9)


def test_summer_time_is_the_zones_not_utcs() -> None:
    # 30 Mar 2026 is after the switch to summer time: 09:00 Berlin is 07:00 UTC.
    assert BERLIN.add(utc(2026, 3, 28, 12), timedelta(hours=1)) == utc(2026, 3, 30, 8)


def test_targets_parse_and_first_matching_rule_wins() -> None:
    assert parse_target("1h") == Target(timedelta(hours=1), False)
    assert parse_target("8bh") == Target(timedelta(hours=8), True)
    assert parse_target("") is None
    for bad in ("8x", "0h", "h"):
        with pytest.raises(ValueError):
            parse_target(bad)
    desk = Desk(
        hours=BERLIN,
        sla=(
            SlaRule(intent="outage_report", first=parse_target("1h")),
            SlaRule(priority="urgent", first=parse_target("2h")),
            SlaRule(first=parse_target("8bh"), next=parse_target("1d")),
        ),
    )
    saturday = utc(2026, 11, 28, 12)
    assert desk.first_due(saturday, "outage_report", "normal") == saturday + timedelta(hours=1)
    assert desk.first_due(saturday, "billing", "urgent") == saturday + timedelta(hours=2)
    assert desk.first_due(saturday, "billing", "normal") == utc(2026, 11, 30, 16)
    assert desk.next_due(saturday, "billing", "normal") == saturday + timedelta(days=1)
    assert desk.next_due(saturday, "outage_report", "normal") is None


def test_vip_by_domain_or_address_and_teams() -> None:
    desk = Desk(vip=("@bigcorp.example", "ceo@small.example"), teams=(("sec", ("ana", "bo")),))
    assert desk.is_vip("Ops@BigCorp.example") and desk.is_vip("ceo@small.example")
    assert not desk.is_vip("dev@small.example")
    assert desk.teams_of("ana") == ("sec",) and desk.teams_of("cy") == ()
