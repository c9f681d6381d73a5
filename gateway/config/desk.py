"""How the support desk runs: teams, routing rules, response targets, business hours.

`[desk]` holds the time zone and business hours the targets count in, when a pending
ticket is solved on its own, and the customers whose mail comes first. `[[team]]` names
who is in each team ("mine + unassigned in my teams"). `[[routing]]` rules give a new
ticket its owner or team: first match wins, a rule without conditions is the default.
`[[sla]]` rules give the first-response and next-response targets by intent or
priority: first match wins. Values are checked here for meaning (the loader checks types
and unknown keys), so a typo in a time zone or a duration stops the gateway at start.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.desk.hours import PRIORITIES, parse_target

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class DeskConfig:
    timezone: str = "UTC"
    business_hours: str = "09:00-17:00"
    business_days: list[str] = field(default_factory=lambda: list(DAYS[:5]))
    # A ticket pending on the customer this long is solved (0: never automatically).
    solve_after_days: int = 7
    # Customers whose mail is one priority higher ("@bigcorp.com" or an address).
    vip: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TeamConfig:
    name: str = ""
    members: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RoutingRule:
    """Conditions (all that are set must hold) → an owner and/or a team."""

    name: str = ""
    intent: str = ""
    mailbox: str = ""
    sender_domain: str = ""
    entity: str = ""  # an entity value ("db-main-2"), or "LABEL:value"
    owner: str = ""
    team: str = ""


@dataclass(frozen=True)
class SlaRule:
    """Targets for tickets of an intent and/or priority ("" matches any). Targets are
    "30m", "4h", "2d" in wall-clock time or "8bh" in business hours; "" means none."""

    intent: str = ""
    priority: str = ""
    first_response: str = ""
    next_response: str = ""


# Sections written as arrays of tables ([[team]]), and the Config field each fills.
LIST_SECTIONS: dict[str, tuple[type, str]] = {
    "team": (TeamConfig, "teams"),
    "routing": (RoutingRule, "routing"),
    "sla": (SlaRule, "sla"),
}


def parse_hours(text: str) -> tuple[time, time]:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not business hours (example: 09:00-17:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if not (0 <= h1 < 24 and 0 <= h2 <= 24 and m1 < 60 and m2 < 60):
        raise ValueError(f"{text!r} has an impossible time")
    start = time(h1, m1)
    end = time(23, 59, 59) if (h2, m2) == (24, 0) else time(h2, m2)
    if end <= start:
        raise ValueError(f"{text!r}: the day must end after it starts")
    return start, end


def desk_problems(
    desk: DeskConfig,
    teams: Sequence[TeamConfig],
    routing: Sequence[RoutingRule],
    sla: Sequence[SlaRule],
) -> list[str]:
    """Every problem with the desk sections, worded for the operator."""
    problems: list[str] = []
    try:
        ZoneInfo(desk.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"[desk] timezone: unknown time zone {desk.timezone!r}")
    try:
        parse_hours(desk.business_hours)
    except ValueError as exc:
        problems.append(f"[desk] business_hours: {exc}")
    bad_days = [d for d in desk.business_days if d not in DAYS]
    if bad_days or not desk.business_days:
        problems.append(f"[desk] business_days: use {', '.join(DAYS)} (got {bad_days or 'none'})")
    if desk.solve_after_days < 0:
        problems.append("[desk] solve_after_days must be 0 (never) or more")
    names = [t.name for t in teams]
    for team in teams:
        if not team.name.strip():
            problems.append("[[team]]: name is required")
        if names.count(team.name) > 1:
            problems.append(f"[[team]] {team.name}: defined twice")
    for i, rule in enumerate(routing):
        where = f"[[routing]] {rule.name or f'#{i + 1}'}"
        if not (rule.owner or rule.team):
            problems.append(f"{where}: set owner or team")
        if rule.team and rule.team not in names:
            problems.append(f"{where}: team {rule.team!r} is not a [[team]]")
    for i, sla_rule in enumerate(sla):
        where = f"[[sla]] #{i + 1}"
        if sla_rule.priority and sla_rule.priority not in PRIORITIES:
            problems.append(f"{where}: priority must be one of {', '.join(PRIORITIES)}")
        for key in ("first_response", "next_response"):
            try:
                parse_target(getattr(sla_rule, key))
            except ValueError as exc:
                problems.append(f"{where} {key}: {exc}")
    return problems
