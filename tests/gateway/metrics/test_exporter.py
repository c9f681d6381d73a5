"""supportgate's /metrics over real HTTP on 127.0.0.1: the numbers match the database.

A database with known rows is served by the real endpoint (and by a real `serve`
process), the answer is read with prometheus_client's own text parser, and a real
Prometheus scrapes it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.config import MetricsEndpointConfig
from gateway.metrics.exporter import MetricsEndpoint, start_endpoint
from storage.db import make_engine
from storage.models import Draft, Message, Outbox, RawMessage, Ticket, utcnow
from tests.support.net import free_port
from tests.support.prometheus import Prometheus, instant

ROOT = Path(__file__).resolve().parents[3]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def fill(engine: Engine, now: datetime) -> None:
    """Eight inbound messages (states and ages below), the outbound copy of a reply,
    six drafts of which three await review, and five released replies (three sent)."""
    with Session(engine) as session:
        session.add(RawMessage(sha256="0" * 64, size=1, data=b"x"))
        ticket = Ticket(subject="t")
        session.add(ticket)
        session.flush()
        inbound = [
            ("received", 1),
            ("received", 2),
            ("drafted", 30),
            ("drafted", 90),
            ("drafted", 5),
            ("shunted", 7),
            ("sent", 200),
            ("approved", 3),
        ]
        messages = []
        for n, (state, minutes_ago) in enumerate(inbound):
            message = Message(
                dedupe_key=f"mid:in-{n}",
                sha256="0" * 64,
                state=state,
                ticket_id=ticket.id,
                received_at=now - timedelta(minutes=minutes_ago),
            )
            session.add(message)
            messages.append(message)
        session.add(
            Message(
                dedupe_key="mid:out-1",
                sha256="0" * 64,
                direction="outbound",
                state="sent",
                received_at=now - timedelta(days=3),
            )
        )
        session.flush()
        # Waiting for review: mail 30 min, 90 min (needs triage) and 5 min (stale) old.
        # Not waiting: the draft of the sent message (200 min) and the approved one.
        for message, state in zip(
            messages[2:],
            ["drafted", "needs_triage", "stale", "discarded", "sent", "approved"],
            strict=True,
        ):
            assert message.id is not None and ticket.id is not None
            session.add(Draft(ticket_id=ticket.id, message_pk=message.id, state=state))
        for n, state in enumerate(["sent", "sent", "sent", "pending", "failed"]):
            session.add(
                Outbox(ticket_id=ticket.id, state=state, message_id=f"<r{n}@x>", released_by="r")
            )
        session.commit()


@pytest.fixture
def endpoint(engine: Engine) -> Iterator[Callable[..., MetricsEndpoint]]:
    started: list[MetricsEndpoint] = []

    def factory(db: Engine = engine) -> MetricsEndpoint:
        served = start_endpoint(MetricsEndpointConfig(port=0), db)
        assert served is not None
        started.append(served)
        return served

    yield factory
    for served in started:
        served.stop()


def test_the_endpoint_reports_the_queue_as_stored(
    engine: Engine, endpoint: Callable[..., MetricsEndpoint]
) -> None:
    now = utcnow()
    fill(engine, now)
    served = endpoint()
    assert served.url.startswith("http://127.0.0.1:")

    samples = scrape(served.url)

    def state(name: str, value: str) -> float:
        return samples[(name, (("state", value),))]

    assert samples[("supportgate_database_up", ())] == 1
    assert {s: state("supportgate_messages", s) for s in ("received", "drafted", "sent")} == {
        "received": 2,
        "drafted": 3,
        "sent": 1,
    }
    assert state("supportgate_messages", "analysing") == 0  # present though empty
    assert samples[("supportgate_shunted_messages", ())] == 1
    assert state("supportgate_outbox_replies", "sent") == 3
    assert state("supportgate_outbox_replies", "pending") == 1
    assert state("supportgate_outbox_replies", "uncertain") == 0
    assert samples[("supportgate_drafts_awaiting_review", ())] == 3
    age = samples[("supportgate_oldest_unreviewed_draft_age_seconds", ())]
    assert 90 * 60 <= age < 90 * 60 + 60
    assert samples[("supportgate_messages_ingested_total", ())] == 8  # not the outbound copy
    assert samples[("supportgate_replies_sent_total", ())] == 3


def test_an_empty_queue_is_all_zeros(endpoint: Callable[..., MetricsEndpoint]) -> None:
    samples = scrape(endpoint().url)
    assert samples[("supportgate_oldest_unreviewed_draft_age_seconds", ())] == 0
    assert samples[("supportgate_messages_ingested_total", ())] == 0
    assert samples[("supportgate_database_up", ())] == 1


def test_an_unreadable_database_is_database_up_zero(
    tmp_path: Path, endpoint: Callable[..., MetricsEndpoint]
) -> None:
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(b"this is not an SQLite database" * 100)
    db = make_engine(f"sqlite:///{broken}")
    try:
        samples = scrape(endpoint(db).url)
    finally:
        db.dispose()
    assert samples == {("supportgate_database_up", ()): 0}


def test_a_busy_port_is_a_warning_not_a_failure(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING, logger="supportgate.metrics"):
            served = start_endpoint(MetricsEndpointConfig(port=port), engine)
    assert served is None
    assert f"metrics endpoint not started on 127.0.0.1:{port}" in caplog.text
    assert start_endpoint(MetricsEndpointConfig(enabled=False, port=0), engine) is None


def _serve(
    tmp_path: Path, db_path: Path, smtp_port: int, metrics_port: int
) -> subprocess.Popen[str]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{db_path}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nrecipients = ["support@example.com"]\n'
        f"[metrics_endpoint]\nport = {metrics_port}\n"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--no-runners"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _lines_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    while marker not in (line := proc.stdout.readline()):
        assert line, f"serve exited early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
    return [*lines, line]


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_serve_exposes_metrics_that_follow_the_mail(tmp_path: Path, db_path: Path) -> None:
    smtp_port, metrics_port = free_port(), free_port()
    proc = _serve(tmp_path, db_path, smtp_port, metrics_port)
    try:
        lines = _lines_until(proc, "supportgate: metrics on")
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert lines[-1].strip() == f"supportgate: metrics on {url}"
        assert scrape(url)[("supportgate_messages_ingested_total", ())] == 0
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "c@customer.example", "support@example.com", "hi"
        msg.set_content("our database is down")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.send_message(msg)
        samples = scrape(url)
        assert samples[("supportgate_messages_ingested_total", ())] == 1
        assert samples[("supportgate_messages", (("state", "received"),))] == 1
    finally:
        _stop(proc)
    with pytest.raises(OSError):  # the endpoint closed with serve
        scrape(url)


def test_serve_runs_without_metrics_when_the_port_is_taken(tmp_path: Path, db_path: Path) -> None:
    smtp_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = _serve(tmp_path, db_path, smtp_port, taken.getsockname()[1])
        try:
            _lines_until(proc, "SMTP listening")
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
                assert client.noop()[0] == 250
        finally:
            err = _stop(proc)
    assert "metrics endpoint not started" in err


def test_prometheus_scrapes_the_endpoint(
    engine: Engine,
    endpoint: Callable[..., MetricsEndpoint],
    prometheus_factory: Callable[..., Prometheus],
) -> None:
    fill(engine, utcnow())
    served = endpoint()
    target = served.url.removeprefix("http://").removesuffix("/metrics")
    server = prometheus_factory(scrape=[target], scrape_interval="1s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = json.loads(instant(server, "supportgate_replies_sent_total"))
        if answer["data"]["result"]:
            break
        time.sleep(0.2)
    (result,) = answer["data"]["result"]
    assert result["metric"]["job"] == "target0"
    assert float(result["value"][1]) == 3
    by_state = json.loads(instant(server, 'supportgate_messages{state="drafted"}'))
    assert float(by_state["data"]["result"][0]["value"][1]) == 3
