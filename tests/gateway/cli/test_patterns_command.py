"""`supportgate patterns` on a real database: a shared failure and a burst of mail."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from freezegun import freeze_time

from gateway.cli.main import main
from gateway.config import load_config
from gateway.inbound.ingest import ingest
from storage.db import init_db, make_engine

KB = Path(__file__).resolve().parents[3] / "kb"


def incident_mail(n: int, domain: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ops {n} <ops{n}@{domain}>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"502 from your CDN edge ({n})"
    msg["Message-ID"] = f"<incident-{n}@{domain}>"
    msg.set_content(f"Since 09:{n:02d} edge-7.fastcdn.com returns HTTP 502 for our site.\n")
    log = "\n".join(
        f"2026-11-27T09:{n:02d}:{i:02d}Z ERROR upstream prematurely closed connection "
        f"while reading response header from upstream, client: 198.51.100.{i}"
        for i in range(12)
    )
    msg.add_attachment(
        gzip.compress(log.encode()), maintype="application", subtype="gzip", filename="error.log.gz"
    )
    return msg.as_bytes(policy=SMTP)


def test_patterns_finds_the_shared_failure_and_the_burst(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "q.sqlite3"}"\n[kb]\ndir = "{KB}"\n'
    )
    engine = make_engine(load_config(config_path).database_url)
    init_db(engine)
    now = datetime.now(UTC)
    for hours_ago in range(48, 1, -1):  # two quiet days: two mails an hour
        with freeze_time(now - timedelta(hours=hours_ago)):
            for k in range(2):
                ingest(engine, f"Message-ID: <q{hours_ago}-{k}@x>\r\n\r\nhi".encode(), source="t")
    for n, domain in enumerate(["shop-a.example", "shop-b.example", "shop-c.example"] * 10):
        ingest(engine, incident_mail(n, domain), source="t")
    engine.dispose()
    assert main(["--config", str(config_path), "process", "--until-idle"]) == 0
    capsys.readouterr()

    assert main(["--config", str(config_path), "patterns", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    top = report["clusters"][0]
    assert top["size"] == 30 and top["domains"] == 3
    # The host, the status and the log signature cover the same 30 tickets: the most
    # specific of them (the signature) names the finding, once.
    assert top["kind"] == "signature"
    assert len(report["clusters"]) == 1
    burst = [a for a in report["anomalies"] if a["scope"] == "all"]
    # The burst is judged against the same time of day in the quiet days (2 an hour).
    assert burst and burst[0]["observed"] >= 30 and burst[0]["expected"] < 5
    assert burst[0]["sparkline"].strip()
    assert report["metrics"] == []  # none configured

    assert main(["--config", str(config_path), "patterns"]) == 0
    text = capsys.readouterr().out
    assert "cluster: 30 tickets from 3 customers share" in text
    assert "volume: all:" in text
