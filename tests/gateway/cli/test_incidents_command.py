"""`supportgate incidents`: a candidate from imported mail, the metric spike beside it in
a real Prometheus, and the declare → notice → release acts from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from sqlmodel import Session, select

from gateway.cli.incidents import listing
from gateway.cli.main import main
from gateway.config import load_config
from gateway.inbound.ingest import ingest
from gateway.metrics.beside import beside_provider
from storage.db import init_db, make_engine
from storage.models import Outbox
from tests.support.prometheus import Prometheus, anchor_now, latency, openmetrics

HOST = "gw-7.edge.example-cloud.test"


def mail(sender: str, subject: str, body: str, at: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender.split('@')[0].title()} Doe <{sender}>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(at)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[1])
    msg.set_content(f"Hi,\n\n{body}\n\nRegards")
    return msg.as_bytes()


def write_queue(tmp_path: Path, now: datetime, metrics: str = "") -> Path:
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "q.db"}"\n{metrics}')
    engine = make_engine(load_config(config_path).database_url)
    init_db(engine)
    for i in range(30):  # two ordinary days
        at = now - timedelta(hours=50 - 1.5 * i)
        ingest(
            engine,
            mail(f"u{i}@c{i}.test", "Invoice", "Please resend the invoice.", at),
            source="file",
        )
    start = now - timedelta(hours=1, minutes=10)
    for n in range(6):
        body = f"Requests to {HOST} fail with ERR_EDGE_TIMEOUT since a few minutes."
        at = start + timedelta(minutes=5 * n)
        ingest(engine, mail(f"ops@shop{n}.test", "Edge errors", body, at), source="file")
    engine.dispose()
    assert main(["--config", str(config_path), "process", "--until-idle"]) == 0
    return config_path


def test_metric_spike_beside_the_candidate_is_reported_and_a_quiet_one_is_not(
    tmp_path: Path, prometheus_factory: Callable[..., Prometheus]
) -> None:
    now = anchor_now()
    spike_at = now - timedelta(hours=1, minutes=15)
    history = latency("edge_latency_ms", {}, now, seed=3, spike_at=spike_at)
    history += latency("db_latency_ms", {}, now, seed=4)
    server = prometheus_factory(history=openmetrics(history))
    metrics = "".join(
        f'[[metrics]]\nname = "{name}"\nurl = "{server.url}"\nquery = "{name}_latency_ms"\n'
        for name in ("edge", "db")
    )
    config_path = write_queue(tmp_path, now, metrics)
    config = load_config(config_path)
    found = listing(config, make_engine(config.database_url), now=now, hours=72)
    (candidate,) = found["candidates"]
    assert len(candidate.customers) == 6
    ((finding, overlaps),) = found["metrics"]
    assert finding.metric == "edge" and finding.spike.start == spike_at
    assert overlaps == [f"candidate {candidate.ref}"]
    # The same, as the review UI's Incidents screen gets it.
    beside = beside_provider(config, clock=lambda: now)
    assert beside is not None
    ((line, spark),) = beside([("candidate x", candidate.start, candidate.end)])
    assert line.startswith("edge: ") and line.endswith("beside candidate x") and spark
    assert beside([("quiet", now - timedelta(hours=30), now - timedelta(hours=29))]) == []


def test_declare_notice_and_release_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage.models import utcnow

    now = utcnow()
    config_path = write_queue(tmp_path, now)

    def run(*words: str) -> int:
        return main(["--config", str(config_path), "incidents", *words])

    capsys.readouterr()
    assert run("--json") == 0
    listed = json.loads(capsys.readouterr().out)
    (cand,) = listed["candidates"]
    assert cand["customers"] == 6 and cand["sparkline"].strip()
    assert run("declare", "no-such-ref", "--title", "x") == 2
    assert run("declare", cand["ref"], "--title", "Edge gateway timeouts") == 0
    assert "incident #1 declared with 6 tickets" in capsys.readouterr().out
    assert run("release", "1") == 2  # nothing written yet
    assert run("notice", "1", "--status", "identified") == 0
    assert run("release", "1") == 0
    preview = capsys.readouterr().out.strip().splitlines()
    assert preview[-1] == "6 recipients; release with --count 6"
    first = json.loads(preview[1])
    assert first["body"].startswith("Hi Ops,") and "We are aware" in first["body"]
    assert run("release", "1", "--count", "5") == 2
    assert run("release", "1", "--count", "6") == 0
    engine = make_engine(load_config(config_path).database_url)
    with Session(engine) as session:
        rows = session.exec(select(Outbox)).all()
    assert sorted(r.to_addrs[0] for r in rows) == [f"ops@shop{n}.test" for n in range(6)]
    capsys.readouterr()
    assert run("status", "1", "resolved") == 0
    assert run("--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["incidents"][0]["status"] == "resolved"
    assert listed["incidents"][0]["notices"] == [
        {
            "status": "identified",
            "released_by": listed["incidents"][0]["notices"][0]["released_by"],
            "recipients": 6,
        }
    ]
