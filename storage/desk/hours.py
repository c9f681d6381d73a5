"""Business hours and response targets: when a reply is due.

"Billing within 8 business hours" means 8 hours counted only inside the desk's hours
(say 09:00–17:00, Monday to Friday, in the team's time zone): mail on Friday at 16:00
has one hour that day and seven on Monday, so it is due on Monday at 16:00. Wall-clock
targets ("outage within 1 hour") ignore the hours. Pure functions over aware datetimes;
everything is stored in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_TARGET = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|h|d|bh)$")
PRIORITIES = ("urgent", "high", "normal", "low")


@dataclass(frozen=True, slots=True)
class Target:
    span: timedelta
    business: bool

    def describe(self) -> str:
        hours = self.span.total_seconds() / 3600
        return f"{hours:g} business hours" if self.business else f"{hours:g} h"


def parse_target(text: str) -> Target | None:
    """ "4h" → 4 wall-clock hours; "8bh" → 8 business hours; "" → no target."""
    value = text.strip().lower()
    if not value:
        return None
    match = _TARGET.match(value)
    if not match:
        raise ValueError(f"{text!r} is not a target (examples: 30m, 4h, 2d, 8bh)")
    amount, unit = float(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    if unit == "bh":
        return Target(timedelta(hours=amount), True)
    unit_name = {"m": "minutes", "h": "hours", "d": "days"}[unit]
    return Target(timedelta(**{unit_name: amount}), False)


@dataclass(frozen=True, slots=True)
class Hours:
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    start: time = time(9)
    end: time = time(17)
    days: frozenset[int] = frozenset(range(5))  # Monday = 0

    def add(self, at: datetime, span: timedelta) -> datetime:
        """`at` plus `span` counted inside business hours only."""
        local = at.astimezone(self.zone)
        left = span
        for _ in range(3660):  # ten years of days: a guard, never reached in practice
            day = local.date()
            opens = datetime.combine(day, self.start, self.zone)
            closes = datetime.combine(day, self.end, self.zone)
            if local.weekday() in self.days and local < closes:
                begin = max(local, opens)
                if begin + left <= closes:
                    return (begin + left).astimezone(UTC)
                left -= closes - begin
            local = datetime.combine(day + timedelta(days=1), time(0), self.zone)
        raise ValueError("no business hours in ten years: check [desk] business_days")


@dataclass(frozen=True, slots=True)
class SlaRule:
    intent: str = ""
    priority: str = ""
    first: Target | None = None
    next: Target | None = None


@dataclass(frozen=True, slots=True)
class Desk:
    """The desk's rules as storage needs them; built from config by the gateway."""

    hours: Hours = field(default_factory=Hours)
    sla: tuple[SlaRule, ...] = ()
    solve_after: timedelta | None = timedelta(days=7)
    vip: tuple[str, ...] = ()
    teams: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def rule(self, intent: str | None, priority: str | None) -> SlaRule | None:
        for rule in self.sla:
            if rule.intent and rule.intent != intent:
                continue
            if rule.priority and rule.priority != priority:
                continue
            return rule
        return None

    def due(self, at: datetime, target: Target | None) -> datetime | None:
        if target is None:
            return None
        return self.hours.add(at, target.span) if target.business else at + target.span

    def first_due(self, at: datetime, intent: str | None, priority: str | None) -> datetime | None:
        rule = self.rule(intent, priority)
        return self.due(at, rule.first if rule else None)

    def next_due(self, at: datetime, intent: str | None, priority: str | None) -> datetime | None:
        rule = self.rule(intent, priority)
        return self.due(at, rule.next if rule else None)

    def teams_of(self, rep: str) -> tuple[str, ...]:
        return tuple(name for name, members in self.teams if rep in members)

    def is_vip(self, address: str) -> bool:
        address = address.strip().lower()
        domain = "@" + address.rpartition("@")[2]
        return any(v.lower() in (address, domain) for v in self.vip)
