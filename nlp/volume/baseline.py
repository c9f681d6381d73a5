"""The baseline a volume bin is judged against: what is usual for its time of week.

Split from `nlp.volume`, which judges bins against it. For each day, built only from the
days before it: an hour-of-day profile (medians over the usual kind of day, scaled for
the other kind), the median of earlier weeks once two cover a slot, and the spread of
that history (how overdispersed counts are, or a metric's robust scale).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from datetime import date, datetime, timedelta

HOUR = timedelta(hours=1)
# Trailing windows a bin is judged over: the bin alone and the half hour ending with it.
TRAILING = timedelta(minutes=30)
# MAD → standard deviation for normally distributed values.
_MAD_SCALE = 1.4826
# History used for the dispersion and metric scale; and the most that is ever looked at.
_SCALE_DAYS, _MAX_DAYS = 28, 8 * 7
# Weekday traffic when only weekends were seen yet: a guess erring towards calm.
_UNSEEN_WEEKDAY_FACTOR = 3.0


# Per day: (scale, 1 / days of history). Scale is a metric's robust spread per bin, or for
# counts how overdispersed the history is (≥ 1); a baseline from few days is itself noisy,
# so the variance grows by that share (a single earlier day doubles it).
Spread = tuple[float, float]


def baseline(
    times: list[datetime],
    values: list[float],
    *,
    step: timedelta,
    counts: bool,
    since: datetime | None = None,
) -> tuple[list[float | None], list[Spread | None]]:
    """Expected value of every bin and the spread of its day; None before a full day of
    history, and for days that end before `since`."""
    hours = _hourly_means(times, values)
    hour_keys = sorted(hours)
    expected: list[float | None] = [None] * len(times)
    spread: list[Spread | None] = [None] * len(times)
    first = times[0]
    index = 0
    while index < len(times):
        day = times[index].date()
        midnight = times[index].replace(hour=0, minute=0, second=0, microsecond=0)
        stop = index
        while stop < len(times) and times[stop].date() == day:
            stop += 1
        judged = since is None or midnight + timedelta(days=1) > since
        if judged and midnight - first >= timedelta(days=1):
            known = hour_keys[bisect_left(hour_keys, midnight - timedelta(days=_MAX_DAYS)) :]
            known = known[: bisect_left(known, midnight)]
            model = _Model(_smooth(known, hours))
            low = bisect_left(times, midnight - timedelta(days=_SCALE_DAYS))
            fitted = [model.expect(t) for t in times[low:index]]
            span = max(1, round(TRAILING / step))
            scale = (
                _dispersion(values[low:index], fitted, span)
                if counts
                else _robust_scale(values[low:index], fitted)
            )
            day_spread = (scale, 1.0 / model.days)
            for i in range(index, stop):
                expected[i] = model.expect(times[i])
                spread[i] = day_spread
        index = stop
    return expected, spread


def _hourly_means(times: list[datetime], values: list[float]) -> dict[datetime, float]:
    sums: dict[datetime, list[float]] = {}
    for t, v in zip(times, values, strict=True):
        acc = sums.setdefault(t.replace(minute=0, second=0, microsecond=0), [0.0, 0.0])
        acc[0] += v
        acc[1] += 1
    return {hour: total / n for hour, (total, n) in sums.items()}


def _smooth(known: list[datetime], hours: dict[datetime, float]) -> dict[datetime, float]:
    """Each hour's mean blended with its neighbours (¼, ½, ¼): counts of a few mails an
    hour are too noisy to take one by one. Only hours in `known` are used."""
    present = set(known)
    smoothed = {}
    for hour in known:
        total, weight = hours[hour] * 0.5, 0.5
        for side in (hour - HOUR, hour + HOUR):
            if side in present:
                total += hours[side] * 0.25
                weight += 0.25
        smoothed[hour] = total / weight
    return smoothed


class _Model:
    """Hour-of-day profile from the usual kind of day, scaled for the other kind; a slot
    seen in two or more earlier weeks takes the median of those weeks and the profile."""

    def __init__(self, smoothed: dict[datetime, float]) -> None:
        by_day: dict[date, dict[int, float]] = {}
        slots: dict[tuple[int, int], list[float]] = {}
        for hour, value in smoothed.items():
            by_day.setdefault(hour.date(), {})[hour.hour] = value
            slots.setdefault((hour.weekday(), hour.hour), []).append(value)
        weekend = {d: h for d, h in by_day.items() if d.weekday() >= 5}
        weekday = {d: h for d, h in by_day.items() if d.weekday() < 5}
        usual, self._usual_is_weekend = (weekday, False) if weekday else (weekend, True)
        self.days = max(1, len(usual))
        self._profile = [
            statistics.median(day[h] for day in usual.values() if h in day)
            if any(h in day for day in usual.values())
            else 0.0
            for h in range(24)
        ]
        levels = {
            kind: statistics.median(statistics.fmean(day.values()) for day in days.values())
            for kind, days in ((False, weekday), (True, weekend))
            if days
        }
        base = levels.get(self._usual_is_weekend, 0.0)
        self._factor = {
            kind: levels[kind] / base if kind in levels and base > 0 else 1.0
            for kind in (False, True)
        }
        if self._usual_is_weekend:
            self._factor[False] = _UNSEEN_WEEKDAY_FACTOR
        self._slots = {key: vals for key, vals in slots.items() if len(vals) >= 2}
        self._cache: dict[tuple[int, int], float] = {}

    def expect(self, t: datetime) -> float:
        key = (t.weekday(), t.hour)
        if key not in self._cache:
            estimate = self._profile[t.hour] * self._factor[t.weekday() >= 5]
            weeks = self._slots.get(key)
            self._cache[key] = statistics.median([*weeks, estimate]) if weeks else estimate
        return self._cache[key]


def _dispersion(values: list[float], fitted: list[float], span: int) -> float:
    """How much more the history scatters than Poisson (1 when it does not)."""
    if len(values) < span * 6:
        return 1.0
    z = []
    for i in range(span - 1, len(values), span):
        expected = sum(fitted[i - span + 1 : i + 1])
        z.append((sum(values[i - span + 1 : i + 1]) - expected) / math.sqrt(max(expected, 1.0)))
    centre = statistics.median(z)
    return max(1.0, _MAD_SCALE * statistics.median(abs(x - centre) for x in z))


def _robust_scale(values: list[float], fitted: list[float]) -> float:
    """A metric's spread around its baseline: MAD, else mean absolute deviation, else a
    sliver of its level (a perfectly flat series still has a scale to be judged by)."""
    residuals = [v - f for v, f in zip(values, fitted, strict=True)]
    centre = statistics.median(residuals)
    deviations = [abs(r - centre) for r in residuals]
    mad = _MAD_SCALE * statistics.median(deviations)
    if mad > 0:
        return mad
    mean_dev = statistics.fmean(deviations) * math.sqrt(math.pi / 2)
    return mean_dev or max(1e-3 * abs(statistics.median(values)), 1e-9)
