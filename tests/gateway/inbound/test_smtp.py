"""The SMTP front door against real clients (smtplib, swaks) on 127.0.0.1."""

from __future__ import annotations

import shutil
import smtplib
import subprocess
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.models import AuditLog, Message, RawMessage


def make_mail(n: int = 1, *, body: str = "Our API returns 503 since 07:00.", **extra: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Dana <dana@acme.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"API down #{n}"
    msg["Message-ID"] = f"<m{n}@acme.example>"
    for key, value in extra.items():
        msg[key.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(policy=SMTP_POLICY)


def count(engine: Engine, model: Any = Message) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def test_accepted_mail_is_stored_exactly_once(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    raw = make_mail(1)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.sendmail("dana@acme.example", ["support@example.com"], raw)
        assert refused == {}
        # An MTA retrying after a lost 250 must not create a second copy.
        client.sendmail("dana@acme.example", ["support@example.com"], raw)
    with Session(engine) as session:
        rows = session.exec(select(Message)).all()
        assert len(rows) == 1
        msg = rows[0]
        assert msg.message_id == "m1@acme.example"
        assert msg.state == "received"
        assert msg.envelope_from == "dana@acme.example"
        assert msg.envelope_to == ["support@example.com"]
        assert msg.subject == "API down #1"
        stored = session.get(RawMessage, msg.sha256)
        assert stored is not None and stored.data == raw


def test_domain_recipient_is_accepted(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("a@b.example", ["Anyone@HELP.example.org"], make_mail(2))
    assert count(engine) == 1


def test_foreign_recipient_gets_550_at_rcpt(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("spammer@bad.example")
        code, reply = client.rcpt("victim@elsewhere.example")
        assert code == 550
        assert b"relay" in reply.lower()
        # Subdomain tricks are not the configured domain either.
        code, _ = client.rcpt("x@evil.help.example.org.attacker.example")
        assert code == 550
    assert count(engine) == 0


def test_mixed_recipients_keep_only_ours(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        refused = client.sendmail(
            "a@b.example", ["support@example.com", "other@elsewhere.example"], make_mail(3)
        )
    assert "other@elsewhere.example" in refused
    with Session(engine) as session:
        msg = session.exec(select(Message)).one()
        assert msg.envelope_to == ["support@example.com"]


def test_oversize_mail_gets_552_and_is_not_stored(smtp_server, engine: Engine) -> None:
    _, port = smtp_server(max_message_size=20_000)
    raw = make_mail(4, body="x" * 60 + "\n" + ("log line\n" * 4000))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPResponseException) as info:
            client.sendmail("a@b.example", ["support@example.com"], raw)
        assert info.value.smtp_code == 552
    assert count(engine) == 0


def test_storage_failure_answers_451_and_writes_nothing(smtp_server, engine: Engine) -> None:
    from gateway.inbound.ingest import ingest

    calls = {"n": 0}

    def failing_ingest(eng: Engine, raw: bytes, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            # Write half of it, then fail: the transaction must leave nothing behind.
            with Session(eng) as session:
                session.add(RawMessage(sha256="0" * 64, size=1, data=b"x"))
                session.flush()
                raise OSError("disk I/O error")
        return ingest(eng, raw, **kwargs)

    _, port = smtp_server(ingest_fn=failing_ingest)
    raw = make_mail(5)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@b.example", ["support@example.com"], raw)
        assert info.value.smtp_code == 451
    assert count(engine) == 0
    assert count(engine, RawMessage) == 0
    # The sender's retry then succeeds.
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("a@b.example", ["support@example.com"], raw)
    assert count(engine) == 1


def test_real_storage_error_answers_451(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE auditlog")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@b.example", ["support@example.com"], make_mail(6))
        assert info.value.smtp_code == 451
    assert count(engine) == 0


def test_audit_row_written_with_message(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.sendmail("a@b.example", ["support@example.com"], make_mail(7))
    with Session(engine) as session:
        actions = session.exec(select(AuditLog.action)).all()
    assert actions == ["message.received"]


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is not installed")
def test_swaks_client(smtp_server, engine: Engine) -> None:
    _, port = smtp_server()
    result = subprocess.run(
        [
            "swaks", "--server", "127.0.0.1", "--port", str(port),
            "--from", "ops@customer.example", "--to", "support@example.com",
            "--header", "Subject: swaks says hello", "--body", "pod OOMKilled, exit code 137",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0 Stored" in result.stdout
    with Session(engine) as session:
        msg = session.exec(select(Message)).one()
    assert msg.subject == "swaks says hello"

    refused = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(port), "--to", "x@elsewhere.example"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "550" in refused.stdout


def test_auth_required(smtp_server, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SG_TEST_SMTP_PASS", "s3cret")
    _, port = smtp_server(
        auth_required=True, auth_username="mta", auth_password_env="SG_TEST_SMTP_PASS"
    )
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login("mta", "wrong")
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("a@b.example", ["support@example.com"], make_mail(8))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.login("mta", "s3cret")
        client.sendmail("a@b.example", ["support@example.com"], make_mail(8))
    assert count(engine) == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_starttls_required(smtp_server, engine: Engine, tmp_path) -> None:
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    _, port = smtp_server(tls_cert=str(cert), tls_key=str(key), require_starttls=True)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.mail("a@b.example")
        assert code == 530  # must STARTTLS first
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=ctx)
        client.sendmail("a@b.example", ["support@example.com"], make_mail(9))
    assert count(engine) == 1
