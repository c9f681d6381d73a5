"""What a `[[metrics]]` table must say: a reachable-looking URL, a query, real durations.

The loader checks types and unknown keys for every section; these checks are about the
meaning of the values and live apart so that `load.py` stays a generic loader. Durations
use Prometheus's own notation ("5m", "1h30m", "7d") because operators copy them from
their dashboards; `parse_duration` is also what the metrics package uses to read them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from gateway.config.sections import MetricConfig

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
# Prometheus refuses a query_range that would return more points than this per series.
MAX_POINTS = 11_000
HOUR = timedelta(hours=1)


def parse_duration(text: str) -> timedelta:
    """A Prometheus duration ("90s", "1h30m", "7d") as a timedelta; ValueError if not one."""
    value = text.strip()
    pos, total = 0, timedelta()
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h30m, 7d)")
    if total <= timedelta():
        raise ValueError(f"{text!r} must be longer than zero")
    return total


def metric_problems(metrics: Sequence[MetricConfig]) -> list[str]:
    """Every problem with `metrics`, worded for the operator; empty when all is well."""
    problems: list[str] = []
    names = [m.name for m in metrics]
    for i, metric in enumerate(metrics):
        where = f"[[metrics]] {metric.name}" if metric.name else f"[[metrics]] #{i + 1}"
        if not metric.name.strip():
            problems.append(f"{where}: name is required")
        url = urlsplit(metric.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            problems.append(
                f"{where}: url must be an http:// or https:// address of the Prometheus "
                f"server, got {metric.url!r}"
            )
        elif url.query or url.fragment:
            problems.append(f"{where}: url is the server's base address, without ?query or #")
        if not metric.query.strip():
            problems.append(f"{where}: query is required (a PromQL expression)")
        durations = {}
        for key in ("step", "lookback"):
            try:
                durations[key] = parse_duration(getattr(metric, key))
            except ValueError as exc:
                problems.append(f"{where}: {key}: {exc}")
        step = durations.get("step")
        if step is not None and (step > HOUR or HOUR % step):
            # The detector compares bins of the same hour on other days.
            problems.append(f"{where}: step must divide an hour (1m, 5m, 10m, 15m, 30m, 1h)")
        elif len(durations) == 2:
            # History is read from the UTC midnight before `lookback`: up to a day more.
            points = (durations["lookback"] + timedelta(days=1)) / durations["step"]
            if durations["lookback"] <= durations["step"]:
                problems.append(f"{where}: lookback must be longer than step")
            elif points > MAX_POINTS:
                problems.append(
                    f"{where}: the query would return up to {points:,.0f} points a series; "
                    f"Prometheus answers at most {MAX_POINTS:,} (use a longer step or a "
                    "shorter lookback)"
                )
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        problems.append(f"[[metrics]] names must be unique: {', '.join(dupes)}")
    return problems
