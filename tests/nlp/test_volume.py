"""Volume spikes against a time-of-week baseline: calm on rhythm, loud on bursts."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from nlp.volume import DEFAULT_THRESHOLD, bin_counts, detect_spikes

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
STEP = timedelta(minutes=10)
PER_DAY = 144


def poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def rate(t: datetime) -> float:
    """Mails per 10 minutes: a working day in UTC, quiet nights, weekends a third."""
    day = 0.8 if 8 <= t.hour < 18 else 0.25 if 6 <= t.hour < 21 else 0.03
    return day / 3 if t.weekday() >= 5 else day


def traffic(days: int, seed: int = 1) -> list[tuple[datetime, float]]:
    rng = random.Random(seed)
    times = [MONDAY + i * STEP for i in range(days * PER_DAY)]
    return [(t, float(poisson(rng, rate(t)))) for t in times]


def add(series: list[tuple[datetime, float]], at: datetime, *extra: float) -> None:
    """Adds `extra` mails to the bins starting at `at`, one value per bin."""
    index = round((at - MONDAY) / STEP)
    for offset, n in enumerate(extra):
        t, v = series[index + offset]
        series[index + offset] = (t, v + n)


def quiet(days: int) -> list[tuple[datetime, float]]:
    """Deterministic: one mail every other working-hours bin, none at night."""
    times = [MONDAY + i * STEP for i in range(days * PER_DAY)]
    return [
        (t, float(8 <= t.hour < 18 and t.weekday() < 5 and (t.minute // 10) % 2)) for t in times
    ]


def test_bin_counts_counts_per_bin_with_zeros_and_ignores_outsiders() -> None:
    start = MONDAY
    times = [start + timedelta(minutes=m) for m in (0, 5, 9, 10, 35)]
    times += [start - timedelta(minutes=1), start + timedelta(minutes=40)]
    bins = bin_counts(times, start=start, end=start + timedelta(minutes=40))
    assert bins == [(start + i * STEP, c) for i, c in enumerate([3.0, 1.0, 0.0, 1.0])]


def test_a_weekly_rhythm_does_not_alarm() -> None:
    series = traffic(days=21)
    busy = [v for t, v in series if t.weekday() < 5 and 8 <= t.hour < 18]
    nights = [v for t, v in series if t.hour < 6]
    assert sum(busy) / len(busy) > 10 * sum(nights) / len(nights)  # a real rhythm
    assert detect_spikes(series) == []


def test_quiet_nights_do_not_alarm_on_a_couple_of_mails() -> None:
    series = quiet(days=5)
    add(series, MONDAY + timedelta(days=3, hours=3), 2)
    assert detect_spikes(series) == []
    add(series, MONDAY + timedelta(days=3, hours=3, minutes=10), 4)  # six in twenty minutes
    (spike,) = detect_spikes(series)
    assert spike.start.hour == 3


def test_a_burst_alarms_in_its_first_bin() -> None:
    series = traffic(days=5)
    onset = MONDAY + timedelta(days=4, hours=14, minutes=10)
    add(series, onset, 7, 9, 6, 4)
    (spike,) = detect_spikes(series)
    assert spike.start == onset  # raised when the bin ending 14:20 closed
    assert spike.observed >= 26 and spike.expected < 5
    assert spike.score >= DEFAULT_THRESHOLD
    sentence = spike.describe()
    assert sentence.startswith("all: ") and "14:10" in sentence and sentence.endswith(".")


def test_a_burst_on_the_first_day_is_not_judged_without_history() -> None:
    series = traffic(days=2)
    add(series, MONDAY + timedelta(hours=14), 30)
    add(series, MONDAY + timedelta(days=1, hours=14), 30)
    assert [s.start for s in detect_spikes(series)] == [MONDAY + timedelta(days=1, hours=14)]


def test_an_earlier_burst_does_not_hide_a_later_one() -> None:
    series = traffic(days=5)
    onsets = [MONDAY + timedelta(days=day, hours=14) for day in (1, 3)]  # Tue and Thu
    add(series, onsets[0], *[15] * 12)  # the first is far bigger
    add(series, onsets[1], *[6] * 12)
    starts = [s.start for s in detect_spikes(series)]
    assert len(starts) == 2
    assert all(o <= s < o + timedelta(minutes=30) for s, o in zip(starts, onsets, strict=True))


def test_an_incident_in_an_earlier_week_does_not_hide_one_in_the_same_slot() -> None:
    series = traffic(days=21, seed=2)
    onsets = [MONDAY + timedelta(days=7 * week + 4, hours=14) for week in (0, 2)]  # Fridays
    add(series, onsets[0], *[15] * 12)
    add(series, onsets[1], *[5] * 12)
    starts = [s.start for s in detect_spikes(series)]
    assert len(starts) == 2
    assert all(o <= s < o + timedelta(minutes=30) for s, o in zip(starts, onsets, strict=True))


def test_adjacent_alarming_bins_merge_into_one_spike() -> None:
    series = quiet(days=4)
    onset = MONDAY + timedelta(days=2, hours=11)
    add(series, onset, 8, 9, 8)
    (spike,) = detect_spikes(series)
    assert spike.start == onset
    assert spike.end >= onset + 3 * STEP
    assert spike.observed >= 25


def test_recent_keeps_only_spikes_ending_near_the_end() -> None:
    series = quiet(days=4)
    early = MONDAY + timedelta(days=2, hours=10)
    late = MONDAY + timedelta(days=3, hours=22)
    add(series, early, 8)
    add(series, late, 8)
    assert [s.start for s in detect_spikes(series)] == [early, late]
    assert [s.start for s in detect_spikes(series, recent=timedelta(hours=3))] == [late]
    assert detect_spikes(series, recent=timedelta(minutes=30)) == []


def test_the_result_for_a_bin_never_depends_on_later_bins() -> None:
    """What a streaming caller sees at each step is what one run over the week reports."""
    series = traffic(days=5, seed=3)
    onset = MONDAY + timedelta(days=4, hours=9)
    add(series, onset, 5, 8, 8)
    full = detect_spikes(series)
    cut = round((onset - MONDAY) / STEP) + 1
    (seen,) = detect_spikes(series[:cut], recent=STEP)
    assert seen.start == full[-1].start == onset


def test_metric_mode_judges_by_the_series_own_scale() -> None:
    rng = random.Random(4)
    times = [MONDAY + i * STEP for i in range(4 * PER_DAY)]
    ratio = [(t, 0.5 + rng.gauss(0, 0.01)) for t in times]
    jump = round(timedelta(days=3, hours=10) / STEP)
    stepped = ratio[:jump] + [(t, v + 0.1) for t, v in ratio[jump:]]
    (spike,) = detect_spikes(stepped, scope="bounce_ratio", counts=False)
    assert spike.start == times[jump] and spike.scope == "bounce_ratio"
    assert detect_spikes(stepped, counts=True) == []  # a tenth is not three mails
    noisy = [(t, 100 + rng.gauss(0, 50)) for t in times]
    assert detect_spikes(noisy, counts=False) == []  # 50 is its usual scatter


def test_a_flat_metric_alarms_on_a_step() -> None:
    times = [MONDAY + i * STEP for i in range(3 * PER_DAY)]
    jump = 2 * PER_DAY + 60
    series = [(t, 120.0 if i < jump else 126.0) for i, t in enumerate(times)]
    spikes = detect_spikes(series, scope="latency_ms", counts=False)
    assert [s.start for s in spikes] == [times[jump]]
    assert spikes[0].observed == pytest.approx(126.0 * (len(times) - jump))


def test_a_step_that_does_not_divide_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="divide an hour"):
        detect_spikes(quiet(days=1), step=timedelta(minutes=7))


@pytest.mark.parametrize("seed", range(6))
def test_recent_judges_only_the_last_days_yet_finds_what_judging_all_finds(seed: int) -> None:
    rng = random.Random(seed)
    days = rng.randint(3, 12)
    series = traffic(days, seed=seed)
    # Bursts anywhere, some straddling midnight and some long enough to span hours.
    for _ in range(rng.randint(1, 5)):
        at = MONDAY + timedelta(days=rng.uniform(1, days - 0.2))
        at = at.replace(minute=at.minute // 10 * 10, second=0, microsecond=0)
        room = (MONDAY + days * PER_DAY * STEP - at) // STEP
        add(series, at, *[rng.choice([4.0, 6.0, 9.0])] * min(rng.randint(1, 40), room))
    end = series[-1][0] + STEP
    for recent in (timedelta(hours=1), timedelta(hours=30), timedelta(hours=72)):
        cutoff = end - recent
        wanted = [s for s in detect_spikes(series) if s.end > cutoff]
        assert detect_spikes(series, recent=recent) == wanted


def test_a_long_spike_reaching_back_past_midnight_keeps_its_start() -> None:
    series = traffic(7)
    start = MONDAY + timedelta(days=4, hours=20)  # Friday evening into Sunday
    add(series, start, *[8.0] * 6 * 30)  # thirty hours of extra mail
    recent = timedelta(hours=24)  # from Sunday 00:00: the spike began two days earlier
    spikes = detect_spikes(series, recent=recent)
    assert spikes and spikes[0].start <= start + STEP
    assert spikes == [s for s in detect_spikes(series) if s.end > series[-1][0] + STEP - recent]
