"""A row of block characters for "how many per ten minutes": fits in a table cell.

Used beside incidents and metric spikes so a rep sees the shape of a burst at a glance.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(
    times: Iterable[datetime],
    *,
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(minutes=10),
    width: int = 48,
) -> str:
    """Mails per `step` from `start` to `end`; steps widen so it fits in `width`."""
    span = max(end - start, step)
    while span / step > width:
        step *= 2
    bins = [0] * (int(span / step) + 1)
    for t in times:
        if start <= t <= end:
            bins[min(int((t - start) / step), len(bins) - 1)] += 1
    top = max(bins) or 1
    return "".join(
        " " if n == 0 else _SPARKS[min(len(_SPARKS) - 1, (n * len(_SPARKS) - 1) // top)]
        for n in bins
    )


def spark_values(values: Iterable[float], *, width: int = 48) -> str:
    """The same for a series of values (a metric), averaged down to `width`."""
    points = list(values)
    if not points:
        return ""
    per = max(1, -(-len(points) // width))
    means = [
        sum(points[i : i + per]) / len(points[i : i + per]) for i in range(0, len(points), per)
    ]
    low, high = min(means), max(means)
    if high <= low:
        return _SPARKS[0] * len(means)
    scale = (len(_SPARKS) - 1) / (high - low)
    return "".join(_SPARKS[int((v - low) * scale)] for v in means)
