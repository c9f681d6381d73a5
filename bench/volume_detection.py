"""How soon volume alarms catch the incidents of a generated week, and how often they cry wolf.

For each seed, `bench/incident_week.generate_week` writes a week of support mail with a
Friday-afternoon outage (35 customers) and a Wednesday certificate expiry (8 customers
over 20 hours). Volume is counted from the mails' Date headers (`written_at`).

* ours: `nlp.volume.detect_spikes` on 10-minute bins, replayed as a stream — at the end
  of every bin it sees only the bins so far and reports a spike ending in that bin.
  Detection delay = end of the first alarming bin minus the incident's start. The same
  on 5-minute bins (one run over the week; the detector is causal, which the 10-minute
  replay and tests/nlp/test_volume.py check).
* baseline, same run: `nlp.patterns.volume_anomalies` on hourly counts, streamed the
  same way (an hour is judged when it ends).

False alarms are alarm episodes (alarms less than 30 minutes apart count once) that
neither overlap an incident window nor end within one trailing window after it (30
minutes; an hour for the hourly detector), per week.
Monday is warm-up for both detectors (they need a day of history). "cert: yes" means an
alarm fell in the certificate incident's 20 hours; how many of its 8 mails were written
inside alarming bins tells a real catch from a coincidence.

Run: .venv/bin/python bench/volume_detection.py [--seeds 7 8 9]   (about 20 s)
     .venv/bin/python bench/volume_detection.py --range 100       (summary of seeds 1..100)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# A sibling import: bench/ is a folder of scripts that mypy checks as top-level modules.
from incident_week import IncidentTruth, Week, generate_week

from nlp.patterns import hourly_counts, volume_anomalies
from nlp.volume import TRAILING, bin_counts, detect_spikes

Alarm = tuple[datetime, datetime]  # (start, end) of an alarming stretch
HOUR = timedelta(hours=1)


def streamed_ours(series: list[tuple[datetime, float]], step: timedelta) -> list[Alarm]:
    """Bins whose alarm a streaming caller would have seen when the bin ended."""
    raised = []
    for i in range(len(series)):
        if detect_spikes(series[: i + 1], step=step, recent=step):
            raised.append((series[i][0], series[i][0] + step))
    return raised


def full_run_ours(series: list[tuple[datetime, float]], step: timedelta) -> list[Alarm]:
    """The same bins from one run: every bin of a spike alarms (the detector is causal)."""
    alarms = []
    for spike in detect_spikes(series, step=step):
        at = spike.start
        while at < spike.end:
            alarms.append((at, at + step))
            at += step
    return alarms


def streamed_old(week: Week) -> list[Alarm]:
    times = [m.written_at for m in week.mails]
    hourly = hourly_counts(times, start=week.start, end=week.end - HOUR)
    raised = []
    for i in range(len(hourly)):
        if volume_anomalies(hourly[: i + 1], recent_hours=1):
            raised.append((hourly[i][0], hourly[i][0] + HOUR))
    return raised


def episodes(alarms: Sequence[Alarm], gap: timedelta = timedelta(minutes=30)) -> list[Alarm]:
    merged: list[Alarm] = []
    for start, end in sorted(alarms):
        if merged and start - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True, slots=True)
class Result:
    delay: float | None  # minutes from the outage's start to the end of its first alarming bin
    cert: bool
    cert_mails: int  # cert mails written inside an alarming bin (of len(cert.message_ids))
    false_per_week: float
    false_at: list[str]


def score(alarms: Sequence[Alarm], week: Week, slack: timedelta) -> Result:
    def touches(alarm: Alarm, truth: IncidentTruth) -> bool:
        return alarm[1] > truth.start and alarm[0] < truth.end + slack

    outage, cert = week.incidents["outage"], week.incidents["cert"]
    hits = [a for a in alarms if touches(a, outage)]
    delay = (min(a[1] for a in hits) - outage.start) / timedelta(minutes=1) if hits else None
    false = [e for e in episodes(alarms) if not any(touches(e, t) for t in week.incidents.values())]
    return Result(
        delay=delay,
        cert=any(touches(a, cert) for a in alarms),
        cert_mails=sum(
            any(s <= m.written_at < e for s, e in alarms)
            for m in week.mails
            if m.incident == "cert"
        ),
        false_per_week=len(false) * 7 / week.days,
        false_at=[f"{s:%a %H:%M}" for s, _ in false],
    )


def timing(week: Week, scopes: int = 20, repeat: int = 5) -> float:
    """Seconds for one week of 10-minute bins over `scopes` series (intents and "all")."""
    by_intent: dict[str, list[datetime]] = {}
    for mail in week.mails:
        by_intent.setdefault(mail.intent, []).append(mail.written_at)
    groups = [[m.written_at for m in week.mails], *by_intent.values()]
    series = [bin_counts(groups[i % len(groups)], start=week.start, end=week.end) for i in
              range(scopes)]  # fmt: skip
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        for one in series:
            detect_spikes(one)
        best = min(best, time.perf_counter() - began)
    return best


def show(name: str, result: Result) -> None:
    when = "missed" if result.delay is None else f"{result.delay:.0f} min"
    cert = f"yes, {result.cert_mails} of its mails in alarms" if result.cert else "no"
    print(f"  {name:<20} outage: {when:>7}   cert: {cert:<27}"
          f"   false alarms/week: {result.false_per_week:.0f} {result.false_at}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument(
        "--range", type=int, metavar="N", help="seeds 1..N instead (summary only, no replay)"
    )
    args = parser.parse_args()
    quiet = args.range is not None
    seeds = list(range(1, args.range + 1)) if quiet else args.seeds
    step10, step5 = timedelta(minutes=10), timedelta(minutes=5)
    totals: dict[str, list[Result]] = {}
    for seed in seeds:
        week = generate_week(seed)
        times = [m.written_at for m in week.mails]
        series10 = bin_counts(times, start=week.start, end=week.end, step=step10)
        series5 = bin_counts(times, start=week.start, end=week.end, step=step5)
        full = full_run_ours(series10, step10)
        streamed = full if quiet else streamed_ours(series10, step10)
        runs = {
            "ours, 10-min bins": score(streamed, week, TRAILING),
            "ours, 5-min bins": score(full_run_ours(series5, step5), week, TRAILING),
            "old hourly (stream)": score(streamed_old(week), week, HOUR),
        }
        for name, result in runs.items():
            totals.setdefault(name, []).append(result)
        if quiet:
            continue
        print(f"seed {seed}: {len(week.mails)} mails, outage Fri 14:10, cert Wed 09:00")
        for name, result in runs.items():
            show(name, result)
        print(f"  stream replay matches one full run: {'yes' if streamed == full else 'NO'}")
        print(f"  20 scopes x one week of 10-min bins: {timing(week) * 1000:.0f} ms")
    print(f"summary over {len(seeds)} seeds ({seeds[0]}..{seeds[-1]})")
    for name, results in totals.items():
        found = [r.delay for r in results if r.delay is not None]
        soon = sum(d <= 15 for d in found)
        delays = f"mean {sum(found) / len(found):.0f}, worst {max(found):.0f} min" if found else ""
        false = sum(r.false_per_week for r in results) / len(results)
        print(f"  {name:<20} outage found {len(found)}/{len(results)}, within 15 min "
              f"{soon}/{len(results)} ({delays}); cert found {sum(r.cert for r in results)}/"
              f"{len(results)} ({sum(r.cert_mails for r in results) / len(results):.1f} of its "
              f"8 mails in alarms); false alarms/week {false:.2f}, "
              f"worst week {max(r.false_per_week for r in results):.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
