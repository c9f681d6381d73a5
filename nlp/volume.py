"""Volume spikes judged against the week's own rhythm: pure functions over evenly spaced bins.

A support queue is busy at 11:00 on a Tuesday and quiet at 03:00 on a Sunday, so "more
mail than the median hour" (the first detector, in `patterns.py`) alarms every working
morning and misses an outage that lands on a busy afternoon. Here each bin is compared
with what is usual for its time of week:

* the baseline for a day is built only from bins before that day's midnight, so the
  result for any bin is what a streaming detector would have said at that moment;
* it is a median — over days for the hour-of-day profile (scaled for weekends), and
  over weeks once two weeks of history cover a slot — so an earlier incident cannot
  raise the baseline enough to hide the next one;
* the spread is Poisson-like for counts (the square root of the expected count, never
  below one message, widened when the history is short or overdispersed), so two mails
  at 03:00 stay calm; for metrics it is the series' own robust scale (MAD);
* a bin alarms when it, or the trailing half hour ending with it, is `threshold`
  spreads above the baseline; adjacent alarming bins merge into one `Spike`, whose
  start is the first alarming bin (so `start + step` is when it was first raised).
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

HOUR = timedelta(hours=1)
DEFAULT_THRESHOLD = 4.5
# Counts: an alarm needs this many messages above the baseline, however quiet the hour.
MIN_EXCESS = 3.0
# Trailing windows a bin is judged over: the bin alone and the half hour ending with it.
TRAILING = timedelta(minutes=30)
# MAD → standard deviation for normally distributed values.
_MAD_SCALE = 1.4826
# History used for the dispersion and metric scale; and the most that is ever looked at.
_SCALE_DAYS, _MAX_DAYS = 28, 8 * 7
# Weekday traffic when only weekends were seen yet: a guess erring towards calm.
_UNSEEN_WEEKDAY_FACTOR = 3.0


@dataclass(frozen=True, slots=True)
class Spike:
    """Bins from `start` to `end` whose volume the time-of-week baseline does not explain."""

    scope: str  # "all", an intent, or a metric name
    start: datetime  # first alarming bin (UTC)
    end: datetime  # end of the last alarming bin
    observed: float  # total in the spike window
    expected: float  # seasonal baseline for that window
    score: float  # how far above, in robust spreads (the highest of its bins)

    def describe(self) -> str:
        return (
            f"{self.scope}: {self.observed:g} from {self.start:%a %Y-%m-%d %H:%M} to "
            f"{self.end:%H:%M} UTC where {self.expected:.1f} is usual for that time of week, "
            f"{self.score:.1f} spreads above."
        )


def bin_counts(
    times: Iterable[datetime],
    *,
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(minutes=10),
) -> list[tuple[datetime, float]]:
    """Counts per bin [t, t + step) from `start` up to `end`, zeros included; times outside
    are ignored."""
    size = math.ceil((end - start) / step)
    counts = [0.0] * size
    for t in times:
        index = math.floor((t - start) / step)
        if 0 <= index < size:
            counts[index] += 1
    return [(start + i * step, c) for i, c in enumerate(counts)]


def detect_spikes(
    series: Sequence[tuple[datetime, float]],
    *,
    scope: str = "all",
    step: timedelta = timedelta(minutes=10),
    recent: timedelta | None = None,
    counts: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
) -> list[Spike]:
    """Spikes in evenly spaced bins (`step` apart, UTC), oldest first. Days are judged once a
    full day of history precedes them; `recent` keeps only spikes ending within that span
    of the series end. `counts=False` treats values as a metric (robust scale, no floor of
    one message)."""
    if not series:
        return []
    if step > HOUR or HOUR % step:
        raise ValueError(f"step must divide an hour, got {step}")
    times = [t for t, _ in series]
    values = [float(v) for _, v in series]
    expected, spread = _baseline(times, values, step=step, counts=counts)
    alarms = _alarms(values, expected, spread, step=step, counts=counts, threshold=threshold)
    spikes = _merge(alarms, times, values, expected, step=step, scope=scope)
    if recent is not None:
        cutoff = times[-1] + step - recent
        spikes = [s for s in spikes if s.end > cutoff]
    return spikes


# Per day: (scale, 1 / days of history). Scale is a metric's robust spread per bin, or for
# counts how overdispersed the history is (≥ 1); a baseline from few days is itself noisy,
# so the variance grows by that share (a single earlier day doubles it).
_Spread = tuple[float, float]


def _baseline(
    times: list[datetime], values: list[float], *, step: timedelta, counts: bool
) -> tuple[list[float | None], list[_Spread | None]]:
    """Expected value of every bin and the spread of its day; None before a full day of
    history."""
    hours = _hourly_means(times, values)
    hour_keys = sorted(hours)
    expected: list[float | None] = [None] * len(times)
    spread: list[_Spread | None] = [None] * len(times)
    first = times[0]
    index = 0
    while index < len(times):
        day = times[index].date()
        midnight = times[index].replace(hour=0, minute=0, second=0, microsecond=0)
        stop = index
        while stop < len(times) and times[stop].date() == day:
            stop += 1
        if midnight - first >= timedelta(days=1):
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


def _alarms(
    values: list[float],
    expected: list[float | None],
    spread: list[_Spread | None],
    *,
    step: timedelta,
    counts: bool,
    threshold: float,
) -> list[float]:
    """Per bin: its score when it alarms, else 0."""
    windows = sorted({1, max(1, round(TRAILING / step))})
    scores = [0.0] * len(values)
    for i, spread_i in enumerate(spread):
        if spread_i is None:  # no baseline yet
            continue
        scale, per_day = spread_i
        for width in windows:
            lo = i - width + 1
            if lo < 0 or expected[lo] is None:
                continue
            observed = sum(values[lo : i + 1])
            base = sum(e for e in expected[lo : i + 1] if e is not None)
            excess = observed - base
            if counts:
                sd = scale * math.sqrt(max(base, 1.0) * (1.0 + per_day))
                if excess < MIN_EXCESS:
                    continue
            else:
                sd = scale * math.sqrt(width * (1.0 + per_day))
            score = excess / sd
            if score >= threshold:
                scores[i] = max(scores[i], score)
    return scores


def _merge(
    scores: list[float],
    times: list[datetime],
    values: list[float],
    expected: list[float | None],
    *,
    step: timedelta,
    scope: str,
) -> list[Spike]:
    spikes = []
    for alarming, run in groupby(range(len(scores)), key=lambda i: scores[i] > 0):
        if alarming:
            bins = list(run)
            lo, hi = bins[0], bins[-1] + 1
            observed, base = sum(values[lo:hi]), sum(e or 0.0 for e in expected[lo:hi])
            spikes.append(
                Spike(scope, times[lo], times[hi - 1] + step, observed, base, max(scores[lo:hi]))
            )
    return spikes
