"""supportgate's own /metrics: the queue as Prometheus sees it, read fresh at each scrape.

Nothing is counted in memory: every number comes from the database when Prometheus
scrapes (three grouped COUNT queries), so the totals survive restarts, agree with
`supportgate status`, and are the same whichever process serves them. The counters are
counts of rows (stored inbound mail, sent replies), which only grow, so `rate()` works.
A database that cannot be read turns into `supportgate_database_up 0`, not an error page.

The endpoint is `prometheus_client`'s own threaded HTTP server on a private registry; a
busy port logs a warning and `serve` carries on without it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, func, select

from gateway.config import MetricsEndpointConfig
from storage.models import Draft, DraftState, Message, MessageState, Outbox, OutboxState, utcnow

log = logging.getLogger("supportgate.metrics")

# Drafts a human has yet to look at (the review queue).
AWAITING_REVIEW = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)


@dataclass(frozen=True)
class QueueCounts:
    """What one scrape reads from the database."""

    messages: dict[str, int]  # inbound messages by state
    outbox: dict[str, int]  # released replies by state
    awaiting_review: int
    oldest_awaiting: datetime | None  # the oldest such draft's mail, by its own time


def read_counts(engine: Engine) -> QueueCounts:
    with Session(engine) as session:
        by_state = session.exec(
            select(Message.state, func.count())
            .where(Message.direction == "inbound")
            .group_by(Message.state)
        ).all()
        outbox = session.exec(select(Outbox.state, func.count()).group_by(Outbox.state)).all()
        waiting, oldest = session.exec(
            select(func.count(), func.min(func.coalesce(Message.written_at, Message.received_at)))
            .select_from(Draft)
            .join(Message, col(Message.id) == col(Draft.message_pk))
            .where(col(Draft.state).in_(AWAITING_REVIEW))
        ).one()
    return QueueCounts(
        messages={str(state): int(n) for state, n in by_state},
        outbox={str(state): int(n) for state, n in outbox},
        awaiting_review=int(waiting),
        oldest_awaiting=oldest,
    )


def _by_state(known: type[MessageState | OutboxState], counts: dict[str, int]) -> dict[str, int]:
    """Every known state, zero when absent, so a series never vanishes between scrapes."""
    return {**{s.value: 0 for s in known}, **counts}


class QueueCollector(Collector):
    """Gauges and counters of the queue, computed from the database on each scrape."""

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def describe(self) -> Iterator[Metric]:
        # Names only: registering the collector must not query the database.
        yield from self._families(None)

    def collect(self) -> Iterator[Metric]:
        try:
            counts = read_counts(self.engine)
        except SQLAlchemyError as exc:
            log.warning("metrics scrape could not read the database: %s", type(exc).__name__)
            counts = None
        yield from self._families(counts)

    def _families(self, counts: QueueCounts | None) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "supportgate_database_up", "1 if the last scrape could read the queue database"
        )
        if counts is None:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        messages = GaugeMetricFamily(
            "supportgate_messages", "Inbound messages by queue state", labels=["state"]
        )
        for state, n in sorted(_by_state(MessageState, counts.messages).items()):
            messages.add_metric([state], n)
        yield messages
        yield GaugeMetricFamily(
            "supportgate_shunted_messages",
            "Inbound messages set aside for a human after repeated failures",
            value=counts.messages.get(MessageState.SHUNTED, 0),
        )
        outbox = GaugeMetricFamily(
            "supportgate_outbox_replies", "Released replies by sending state", labels=["state"]
        )
        for state, n in sorted(_by_state(OutboxState, counts.outbox).items()):
            outbox.add_metric([state], n)
        yield outbox
        yield GaugeMetricFamily(
            "supportgate_drafts_awaiting_review",
            "Drafts in the review queue (drafted, needs_triage, stale)",
            value=counts.awaiting_review,
        )
        age = 0.0
        if counts.oldest_awaiting is not None:
            age = max(0.0, (self.clock() - counts.oldest_awaiting).total_seconds())
        yield GaugeMetricFamily(
            "supportgate_oldest_unreviewed_draft_age_seconds",
            "Seconds since the customer wrote the oldest mail awaiting review (0: none)",
            value=age,
        )
        yield CounterMetricFamily(
            "supportgate_messages_ingested",
            "Inbound messages stored since the database was created",
            value=sum(counts.messages.values()),
        )
        yield CounterMetricFamily(
            "supportgate_replies_sent",
            "Replies the relay accepted since the database was created",
            value=counts.outbox.get(OutboxState.SENT, 0),
        )


def make_registry(engine: Engine, *, clock: Callable[[], datetime] = utcnow) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(engine, clock=clock))
    return registry


@dataclass
class MetricsEndpoint:
    """A running /metrics server; `stop` closes its socket."""

    server: WSGIServer
    thread: threading.Thread
    host: str

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.server.server_port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_endpoint(config: MetricsEndpointConfig, engine: Engine) -> MetricsEndpoint | None:
    """Serve /metrics as `config` says; None when disabled or when the port is taken."""
    if not config.enabled:
        return None
    try:
        server, thread = start_http_server(
            config.port, addr=config.host, registry=make_registry(engine)
        )
    except OSError as exc:
        log.warning(
            "metrics endpoint not started on %s:%s: %s (set [metrics_endpoint] port, "
            "or enabled = false)",
            config.host,
            config.port,
            exc.strerror or exc,
        )
        return None
    return MetricsEndpoint(server=server, thread=thread, host=config.host)
