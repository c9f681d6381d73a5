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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from nlp.volume.baseline import HOUR, TRAILING, Spread, baseline

__all__ = ["DEFAULT_THRESHOLD", "HOUR", "MIN_EXCESS", "TRAILING", "Spike", "bin_counts"]
__all__ += ["detect_spikes"]

DEFAULT_THRESHOLD = 4.5
# Counts: an alarm needs this many messages above the baseline, however quiet the hour.
MIN_EXCESS = 3.0


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
    if recent is None:
        return _spikes(times, values, None, scope, step, counts, threshold)
    # Only the days the kept spikes can reach are judged (a report of the last hours of
    # weeks of history needs a few baselines, not one a day); a spike that reaches back
    # to the first of them may begin earlier, so then one day more is judged.
    cutoff = times[-1] + step - recent
    since = cutoff - TRAILING
    while True:
        spikes = [
            s
            for s in _spikes(times, values, since, scope, step, counts, threshold)
            if s.end > cutoff
        ]
        start = since.replace(hour=0, minute=0, second=0, microsecond=0)
        if start <= times[0] or not spikes or spikes[0].start > start + TRAILING:
            return spikes
        since = start - timedelta(days=1)


def _spikes(
    times: list[datetime],
    values: list[float],
    since: datetime | None,
    scope: str,
    step: timedelta,
    counts: bool,
    threshold: float,
) -> list[Spike]:
    expected, spread = baseline(times, values, step=step, counts=counts, since=since)
    alarms = _alarms(values, expected, spread, step=step, counts=counts, threshold=threshold)
    return _merge(alarms, times, values, expected, step=step, scope=scope)


def _alarms(
    values: list[float],
    expected: list[float | None],
    spread: list[Spread | None],
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
