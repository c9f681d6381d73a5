"""Clusters across tickets and volume anomalies, on plain facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nlp.patterns import TicketFacts, find_clusters, hourly_counts, volume_anomalies

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def facts(ticket: int, domain: str, **kw: object) -> TicketFacts:
    return TicketFacts(ticket_id=ticket, customer_domain=domain, **kw)  # type: ignore[arg-type]


def test_a_shared_signature_across_customers_is_a_cluster() -> None:
    items = [
        facts(1, "a.example", intent="outage_report", signatures=("8d76b6178f39",)),
        facts(2, "b.example", intent="outage_report", signatures=("8d76b6178f39",)),
        facts(3, "c.example", intent="performance", signatures=("8d76b6178f39", "ffff")),
        facts(4, "d.example", intent="billing", signatures=("0000",)),
    ]
    (cluster,) = find_clusters(items, min_tickets=3)
    assert cluster.kind == "signature" and cluster.key == "8d76b6178f39"
    assert cluster.ticket_ids == (1, 2, 3) and cluster.domains == 3
    assert cluster.intents[0] == ("outage_report", 2)
    assert cluster.describe() == "3 tickets from 3 customers share log signature 8d76b6178f39"


def test_entities_cluster_but_only_identifying_labels() -> None:
    host = ("HOSTNAME", "api.shop.example")
    stamp = ("TIMESTAMP", "2026-11-27")
    items = [facts(i, f"c{i}.example", entities=(host, stamp)) for i in range(1, 5)]
    clusters = find_clusters(items, min_tickets=3)
    assert [(c.kind, c.key) for c in clusters] == [("HOSTNAME", "api.shop.example")]


def test_ranking_prefers_many_customers_and_drops_identical_groups() -> None:
    same_customer = [facts(i, "one.example", entities=(("ERROR_CODE", "e42"),)) for i in range(4)]
    spread = [
        facts(10 + i, f"x{i}.example", entities=(("ERROR_CODE", "econnreset"),)) for i in range(3)
    ]
    # The same three tickets also share a region: one finding, not two.
    spread = [
        TicketFacts(
            f.ticket_id, f.customer_domain, entities=(*f.entities, ("CLOUD_REGION", "eu-west-1"))
        )
        for f in spread
    ]
    clusters = find_clusters(same_customer + spread, min_tickets=3)
    assert [c.key for c in clusters] == ["econnreset", "e42"]
    assert find_clusters(same_customer + spread, min_tickets=3, min_domains=2)[0].domains == 3


def test_small_groups_are_not_clusters() -> None:
    items = [facts(i, "x.example", signatures=("s",)) for i in range(2)]
    assert find_clusters(items, min_tickets=3) == []


def test_hourly_counts_fill_quiet_hours() -> None:
    times = [T0 + timedelta(minutes=5), T0 + timedelta(minutes=50), T0 + timedelta(hours=2)]
    assert [c for _, c in hourly_counts(times, start=T0, end=T0 + timedelta(hours=3))] == [
        2,
        0,
        1,
        0,
    ]


def _series(counts: list[int]) -> list[tuple[datetime, int]]:
    return [(T0 + timedelta(hours=i), c) for i, c in enumerate(counts)]


def test_a_burst_above_a_steady_baseline_is_an_anomaly() -> None:
    usual = [3, 4, 2, 5, 3, 4, 3, 2] * 6  # 48 hours of ordinary mail
    (anomaly,) = volume_anomalies(_series([*usual, 4, 40]), scope="outage_report")
    assert anomaly.count == 40 and anomaly.hour == T0 + timedelta(hours=49)
    assert anomaly.baseline == 3.0 and anomaly.score > 4
    assert "outage_report: 40 messages" in anomaly.describe()


def test_ordinary_variation_and_quiet_queues_stay_calm() -> None:
    assert volume_anomalies(_series([3, 4, 2, 5, 3, 4, 3, 2] * 6 + [6, 7])) == []
    # A queue that usually gets nothing: three mails in an hour is not an incident.
    assert volume_anomalies(_series([0] * 48 + [3])) == []


def test_one_earlier_incident_does_not_hide_the_next() -> None:
    history = [3] * 24 + [60] + [3] * 23
    (anomaly,) = volume_anomalies(_series([*history, 45]))
    assert anomaly.count == 45


def test_too_little_history_says_nothing() -> None:
    assert volume_anomalies(_series([1, 1, 1, 50])) == []
