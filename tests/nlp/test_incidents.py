"""Candidate incidents from sightings: bursts of shared failures, not ordinary sharing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from nlp.incidents import (
    Sighting,
    find_candidates,
    mail_keys,
    matches,
    poisson_surprise,
    sighting,
    split_known,
)
from nlp.sparkline import spark_values, sparkline

T0 = datetime(2026, 11, 16, tzinfo=UTC)
NOW = T0 + timedelta(days=7)


def background(seed: int = 1, days: int = 7) -> list[Sighting]:
    """Ordinary traffic: ~40 mails a day; a 401 or the API host now and then."""
    rng = random.Random(seed)
    out = []
    tid = 1000
    for day in range(days):
        for _ in range(40):
            tid += 1
            at = T0 + timedelta(days=day, hours=rng.uniform(7, 19))
            keys = {("intent", rng.choice(["billing", "how_to", "login_issue", "feature"]))}
            if rng.random() < 0.08:
                keys.add(("HTTP_STATUS", "401"))
            if rng.random() < 0.1:
                keys.add(("HOSTNAME", "api.example-cloud.test"))
            out.append(
                Sighting(tid, f"c{rng.randrange(150)}@x{tid % 150}.test", at, frozenset(keys))
            )
    return out


def burst(
    start: datetime, n: int, span: timedelta, keys: set[tuple[str, str]], first: int
) -> list[Sighting]:
    return [
        Sighting(
            first + i, f"p{i}@b{first + i}.test", start + span * i / max(n - 1, 1), frozenset(keys)
        )
        for i in range(n)
    ]


def test_poisson_surprise_orders_rare_above_common() -> None:
    assert poisson_surprise(0, 1.0) == 0.0
    assert poisson_surprise(3, 0.01) > 6 > poisson_surprise(3, 1.0) > poisson_surprise(1, 1.0)
    assert poisson_surprise(200, 1.0) > 100  # no cancellation to zero


def test_ordinary_week_has_no_candidate() -> None:
    for seed in (1, 2, 3):
        assert find_candidates(background(seed), since=NOW - timedelta(hours=72)) == []


def test_sharp_outage_with_several_keys_is_one_candidate() -> None:
    keys = {("ERROR_CODE", "e_upstream"), ("HOSTNAME", "lb-eu-1"), ("CLOUD_REGION", "eu-c-1")}
    start = T0 + timedelta(days=5, hours=14)
    sightings = background() + burst(start, 20, timedelta(hours=2), keys, 1)
    # Terse mails in the same span that only say "outage" are brought in by the weak key.
    quiet = [Sighting(90 + i, f"q{i}@q.test", start + timedelta(minutes=20 * i),
                      frozenset({("CLOUD_REGION", "eu-c-1")})) for i in range(3)]  # fmt: skip
    found = find_candidates(sightings + quiet, since=NOW - timedelta(hours=72))
    assert len(found) == 1
    cand = found[0]
    assert set(range(1, 21)) | {90, 91, 92} == set(cand.ticket_ids)
    assert {("ERROR_CODE", "e_upstream"), ("HOSTNAME", "lb-eu-1")} <= cand.keys
    assert cand.start == start and cand.end == start + timedelta(hours=2)


def test_slow_certificate_expiry_over_a_day_is_found() -> None:
    keys = {("signature", "cert-expired")}
    start = T0 + timedelta(days=5, hours=9)
    found = find_candidates(
        background() + burst(start, 8, timedelta(hours=20), keys, 1),
        since=NOW - timedelta(hours=72),
    )
    assert [c.ref for c in found] == ["signature:cert-expired"]
    assert len(found[0].customers) == 8


def test_two_customers_are_not_an_incident_and_old_bursts_are_outside_the_window() -> None:
    keys = {("ERROR_CODE", "e_rare")}
    two = burst(T0 + timedelta(days=6), 2, timedelta(minutes=10), keys, 1)
    assert find_candidates(background() + two, since=NOW - timedelta(hours=72)) == []
    old = burst(T0 + timedelta(days=1), 6, timedelta(minutes=30), keys, 1)
    assert find_candidates(background() + old, since=NOW - timedelta(hours=72)) == []


def test_sighting_keys_and_matching() -> None:
    s = sighting(1, "a@b.test", NOW, [("HOSTNAME", " DB-1 "), ("EMAIL", "x@y")], ["abc"], "outage")
    assert s.keys == {("HOSTNAME", "db-1"), ("signature", "abc"), ("intent", "outage")}
    assert matches([("HOSTNAME", "db-1"), ("intent", "outage")], s.keys) == [("HOSTNAME", "db-1")]
    assert matches([("intent", "outage")], s.keys) == []  # weak keys never attach


def test_split_known_suggests_new_tickets_for_a_declared_incident() -> None:
    keys = {("ERROR_CODE", "e_upstream")}
    cand = find_candidates(
        background() + burst(NOW - timedelta(hours=3), 6, timedelta(hours=1), keys, 1),
        since=NOW - timedelta(hours=72),
    )
    fresh, suggest = split_known(cand, {7: {1, 2, 3, 4}})
    assert fresh == [] and suggest == {7: [5, 6]}
    fresh, suggest = split_known(cand, {7: {99}})
    assert fresh == cand and suggest == {}


def test_sparklines() -> None:
    times = [T0 + timedelta(minutes=m) for m in (0, 1, 2, 30)]
    line = sparkline(times, start=T0, end=T0 + timedelta(minutes=30))
    assert len(line) == 4 and line[0] == "█" and line[1] == " " and line[-1] != " "
    assert len(sparkline(times, start=T0, end=T0 + timedelta(days=7), width=48)) <= 48
    assert spark_values([1.0, 1.0, 5.0]) == "▁▁█" and spark_values([]) == ""


def test_symptoms_are_found_whatever_the_case() -> None:
    from nlp.incidents.keys import symptoms

    found = symptoms("ECONNREFUSED from the LB, and the Certificate Has Expired. Checkout IS DOWN.")
    assert found == {
        ("symptom", "connection refused"),
        ("symptom", "certificate expired"),
        ("symptom", "down"),
    }
    assert symptoms("Please resend the invoice.") == set()


def test_known_keys_stand_in_for_the_text_scan() -> None:
    text = "The certificate has expired on db-1"
    s = sighting(1, "a@b.test", NOW, [("HOSTNAME", " DB-1 ")], ["abc"], "outage", text)
    keys = mail_keys([("HOSTNAME", " DB-1 ")], ["abc"], text)
    assert s.keys == keys | {("intent", "outage")}
    stored = [[k, v] for k, v in sorted(keys)]  # as an analysis row keeps them
    again = sighting(1, "a@b.test", NOW, [], [], "outage", "", stored)
    assert again == s
    # Stored keys are taken as they are: the entities and text are not looked at.
    assert sighting(1, "a@b.test", NOW, [("IP", "10.0.0.1")], [], None, text, []).keys == set()


def test_keys_too_few_customers_name_change_nothing() -> None:
    """Keys named by fewer customers than a candidate needs are skipped before bursts are
    formed: giving mails that already name a strong key more of them (one mail's IP, a
    host two customers share, in a burst of two) leaves the candidates as they were."""
    keys = {("ERROR_CODE", "e_upstream"), ("CLOUD_REGION", "eu-c-1")}
    start = NOW - timedelta(hours=5)
    base = background() + burst(start, 12, timedelta(hours=1), keys, 1)
    expected = find_candidates(base, since=NOW - timedelta(hours=72))
    assert len(expected) == 1

    def more(i: int, s: Sighting) -> Sighting:
        if not any(k[0] in ("ERROR_CODE", "HOSTNAME") for k in s.keys):
            return s  # a mail without a strong key may join a candidate: leave it be
        extra = {("IP", f"10.0.{i % 250}.{i // 250}")}
        if s.ticket_id in (1, 2):
            extra |= {("HOSTNAME", "pair.example"), ("ERROR_CODE", "e_pair")}
        return Sighting(s.ticket_id, s.customer, s.at, s.keys | extra)

    noisy = [more(i, s) for i, s in enumerate(base)]
    assert noisy != base
    assert find_candidates(noisy, since=NOW - timedelta(hours=72)) == expected
