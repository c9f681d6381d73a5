"""The IMAP side of the CLI contract: `ingest --imap` and `status`, against Dovecot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli.main import main
from tests.support.dovecot import Dovecot, make_message, password_env


def _config(tmp_path: Path, dovecot: Dovecot, *, user: str = "alice", env: str = "") -> Path:
    env = env or f"SG_TEST_IMAP_PW_{user.upper()}"
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path / "q.sqlite3"}"\n'
        f'[[imap]]\nname = "support"\nhost = "{dovecot.host}"\nport = {dovecot.port}\n'
        f'tls = "none"\nusername = "{user}"\npassword_env = "{env}"\n'
    )
    return path


def test_ingest_imap_backfills_and_status_reports_the_sync(
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    dovecot.append([make_message(i) for i in range(7)])
    config = _config(tmp_path, dovecot)
    assert main(["--config", str(config), "ingest", "--imap", "support"]) == 0
    assert "imap support: 7 new message(s) stored" in capsys.readouterr().out
    # Backfill again: everything is already stored.
    assert main(["--config", str(config), "ingest", "--imap", "support"]) == 0
    assert "imap support: 0 new message(s) stored" in capsys.readouterr().out

    assert main(["--config", str(config), "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (mailbox,) = report["mailboxes"]
    assert mailbox["mailbox"] == "support" and mailbox["last_sync_at"]
    assert mailbox["failing"] is False
    assert report["total"] == 7


def test_wrong_password_is_a_clear_error_not_a_traceback(
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SG_TEST_WRONG_PW", "not-the-password")
    config = _config(tmp_path, dovecot, env="SG_TEST_WRONG_PW")
    assert main(["--config", str(config), "ingest", "--imap", "support"]) == 1
    err = capsys.readouterr().err
    assert "error: imap support:" in err and "authentication failed" in err
    assert "Traceback" not in err and "not-the-password" not in err

    assert main(["--config", str(config), "status"]) == 0
    out = capsys.readouterr().out
    assert "imap support/INBOX: FAILING; last sync never; last error" in out


def test_bad_since_date_is_rejected(
    dovecot: Dovecot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, dovecot)
    assert main(["--config", str(config), "ingest", "--imap", "support", "--since", "May 1"]) == 2
    assert "--since expects YYYY-MM-DD" in capsys.readouterr().err


def test_eight_bit_message_id_does_not_hold_back_the_mailbox(
    dovecot: Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for var, value in password_env(dovecot).items():
        monkeypatch.setenv(var, value)
    odd = (
        b"From: x@example.org\r\nTo: support@example.com\r\nSubject: caf\xe9\r\n"
        b"Message-ID: <caf\xe9-2@example.org>\r\nIn-Reply-To: <r\xff@x>\r\n\r\nbody\r\n"
    )
    dovecot.append([make_message(1), odd, make_message(3, prefix="urgent")])
    config = _config(tmp_path, dovecot)
    assert main(["--config", str(config), "ingest", "--imap", "support"]) == 0
    assert "imap support: 3 new message(s) stored" in capsys.readouterr().out
