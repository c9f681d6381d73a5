"""The public CLI contract: ingest, process, status, export, check-config."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from gateway.cli.main import main

SAMPLES = Path(__file__).resolve().parents[3] / "gateway" / "samples"


def write_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{tmp_path / "q.sqlite3"}"\n{extra}')
    return config


def test_ingest_directory_and_mbox_then_process_status_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    box_path = tmp_path / "old.mbox"
    box = mailbox.mbox(str(box_path))
    for n in range(3):
        box.add(f"From: m{n}@x.example\nSubject: mbox {n}\nMessage-ID: <mbox{n}@x>\n\nbody {n}\n")
    box.close()

    assert main(["--config", str(config), "ingest", str(SAMPLES), str(box_path)]) == 0
    out = capsys.readouterr().out
    n_samples = len(list(SAMPLES.glob("*.eml")))
    assert f"ingested {n_samples + 3} new, 0 duplicate, 0 failed" in out

    # Ingest is idempotent from the CLI too.
    assert main(["--config", str(config), "ingest", str(SAMPLES)]) == 0
    assert f"ingested 0 new, {n_samples} duplicate" in capsys.readouterr().out

    assert main(["--config", str(config), "process", "--until-idle"]) == 0
    capsys.readouterr()

    assert main(["--config", str(config), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["total"] == n_samples + 3
    assert status["messages"].get("received", 0) == 0
    assert status["messages"].get("analysing", 0) == 0

    assert main(["--config", str(config), "status"]) == 0
    text = capsys.readouterr().out
    assert f"messages: {n_samples + 3}" in text and "oldest unreviewed" in text

    out_file = tmp_path / "export.jsonl"
    assert (
        main(["--config", str(config), "export", "--format", "jsonl", "--out", str(out_file)]) == 0
    )
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(rows) == n_samples + 3
    first = next(r for r in rows if r["message_id"] == "sample-01@customers.example")
    assert first["from"] == "dana@acme-shop.com"
    assert "503" in first["body"]
    assert first["attachments"] == [
        {"name": "nginx-error.log.gz", "size": first["attachments"][0]["size"]}
    ]
    for key in ("id", "ticket_id", "to", "subject", "received_at", "state", "shunt_reason"):
        assert key in first
    # The co-pilot brief travels with the draft.
    brief = first["draft"]["brief"]
    assert brief["log"]["attachment"] == "nginx-error.log.gz" and brief["asks"]
    assert first["draft"]["language"] == "en"


def test_ingest_reports_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "ingest", str(tmp_path / "nope.eml")]) == 1
    captured = capsys.readouterr()
    assert "nope.eml" in captured.err
    assert "0 new, 0 duplicate, 1 failed" in captured.out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[smtp]\nprot = 25\n", "unknown key in [smtp]: prot"),
        ('[smtp]\nport = "25"\n', "[smtp] port: expected an integer"),
        ("[smpt]\n", "unknown section: smpt"),
        ("[imap]\nname = 'x'\n", "[[imap]]"),
        ("[[imap]]\nname = 'x'\nusername = 'u'\n", "set password_env"),
        ("[sender]\ntls = 'ssl'\n", "must be one of implicit, none, starttls"),
        ("not toml = = =\n", "invalid TOML"),
        ("[runner]\nbatch_size = 0\n", "[runner] batch_size: must be at least 1, got 0"),
        ("[smtp]\nport = 70000\n", "[smtp] port: must be between 1 and 65535"),
        ("[review]\npage_size = 0\n", "[review] page_size: must be between 1 and 10000"),
        (
            "[[imap]]\nname = 'x'\nusername = 'u'\npassword_env = 'P'\ntls = 'ssl'\n",
            "[imap #1] tls: must be one of implicit, none, starttls",
        ),
        ("[sender]\nusername = 'relay'\n", "[sender] username needs password_env"),
    ],
)
def test_check_config_says_exactly_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(body)
    assert main(["--config", str(config), "check-config"]) == 2
    assert expected in capsys.readouterr().err


def test_check_config_names_missing_secret_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SG_TEST_IMAP_PASS", raising=False)
    config = write_config(
        tmp_path,
        "[[imap]]\nname = 'support'\nusername = 'u'\npassword_env = 'SG_TEST_IMAP_PASS'\n",
    )
    assert main(["--config", str(config), "check-config"]) == 1
    assert "SG_TEST_IMAP_PASS is not set" in capsys.readouterr().err
    monkeypatch.setenv("SG_TEST_IMAP_PASS", "x")
    assert main(["--config", str(config), "check-config"]) == 0
    assert "config OK" in capsys.readouterr().out


def test_config_from_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "[smtp]\nport = 2600\n")
    monkeypatch.setenv("SUPPORTGATE_CONFIG", str(config))
    assert main(["check-config"]) == 0
    assert "127.0.0.1:2600" in capsys.readouterr().out


def test_shipped_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = Path(__file__).resolve().parents[3] / "config.toml"
    assert main(["--config", str(shipped), "check-config"]) == 0


def test_demo_runs_end_to_end_without_ui(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--workdir", str(tmp_path / "demo"), "--no-ui"]) == 0
    out = capsys.readouterr().out
    n_samples = len(list(SAMPLES.glob("*.eml")))
    assert f"demo: {n_samples} sample mail(s) accepted by the SMTP front door" in out
    assert "received" not in out.split("messages by state:")[1].split("\n")[0]


def test_status_says_when_released_replies_wait_for_a_disabled_sender(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from storage.db import init_db, make_engine, session_scope
    from storage.models import Outbox

    config = write_config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'q.sqlite3'}")
    init_db(engine)
    with session_scope(engine) as session:
        session.add(
            Outbox(message_id="<sg-1@example.com>", to_addrs=["c@x.example"], released_by="alice")
        )
    engine.dispose()
    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert "outbox: pending 1" in out
    assert "[sender] is disabled; 1 released repl(ies) wait in the outbox" in out
