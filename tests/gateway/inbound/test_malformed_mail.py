"""Nasty mail is stored, then parsed or shunted with a reason — never lost, never a crash."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import ParseError, parse_message
from gateway.runner import run_until_idle
from storage.models import Message, RawMessage

NASTY = Path(__file__).resolve().parents[2] / "fixtures" / "nasty"


def deeply_nested(depth: int) -> bytes:
    lines = ["From: nest@customer.example", "To: support@example.com", "Subject: nested",
             "Message-ID: <deeply-nested@customer.example>", "MIME-Version: 1.0"]  # fmt: skip
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "the innermost text: ORA-00942"]
    for level in reversed(range(depth)):
        lines += [f"--b{level}--"]
    return "\r\n".join(lines).encode()


def big_attachment(size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "big@customer.example"
    msg["To"] = "support@example.com"
    msg["Subject"] = "huge log"
    msg["Message-ID"] = "<big-attachment@customer.example>"
    msg.set_content("full debug log attached")
    msg.add_attachment(
        b"E" * size, maintype="application", subtype="octet-stream", filename="debug.log"
    )
    return msg.as_bytes(policy=SMTP_POLICY)


def all_nasty() -> dict[str, bytes]:
    cases = {p.name: p.read_bytes() for p in sorted(NASTY.iterdir())}
    cases["deeply_nested"] = deeply_nested(80)
    cases["big_attachment"] = big_attachment(10 * 1024 * 1024)
    return cases


def test_every_nasty_message_is_stored_then_parsed_or_shunted(make_config, engine: Engine) -> None:
    config = make_config(parse={"max_attachment_bytes": 1024 * 1024})
    cases = all_nasty()
    pks = {name: ingest(engine, raw, source="test").message_pk for name, raw in cases.items()}
    assert len(set(pks.values())) == len(cases), "every case is a distinct stored message"

    run_until_idle([AnalysisRunner(config, engine)])

    with Session(engine) as session:
        for name, pk in pks.items():
            msg = session.get(Message, pk)
            assert msg is not None
            raw = session.get(RawMessage, msg.sha256)
            assert raw is not None and raw.data == cases[name], f"{name}: raw bytes kept intact"
            assert msg.state in {"drafted", "suppressed", "shunted"}, f"{name}: {msg.state}"
            if msg.state == "shunted":
                assert msg.error, f"{name}: shunted without a reason"
    by_name: dict[str, Message] = {}
    with Session(engine) as session:
        for name, pk in pks.items():
            row = session.get(Message, pk)
            assert row is not None
            by_name[name] = row
    assert by_name["empty.eml"].state == "shunted"
    assert "empty" in (by_name["empty.eml"].error or "")
    assert by_name["garbage.eml"].state in {"shunted", "drafted"}
    for readable in ("no_message_id.eml", "broken_boundary.eml", "unknown_charset.eml",
                     "eight_bit_headers.eml", "nul_bytes.eml", "html_only.eml",
                     "deeply_nested", "big_attachment"):  # fmt: skip
        assert by_name[readable].state != "shunted", f"{readable}: {by_name[readable].error}"


def test_header_injection_is_neutralised() -> None:
    parsed = parse_message((NASTY / "header_injection.eml").read_bytes())
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    assert parsed.subject == "hello Bcc: victim@example.com"
    for _, value in parsed.headers:
        assert "\n" not in value and "\r" not in value


def test_unknown_charset_decodes_with_a_defect() -> None:
    parsed = parse_message((NASTY / "unknown_charset.eml").read_bytes())
    assert "https://status.customer.example" in parsed.text
    assert parsed.subject  # something readable, not an exception


def test_eight_bit_headers_are_readable() -> None:
    parsed = parse_message((NASTY / "eight_bit_headers.eml").read_bytes())
    assert "503" in parsed.subject
    assert parsed.from_addr == "juergen@customer.example"


def test_nul_bytes_removed_and_reported() -> None:
    parsed = parse_message((NASTY / "nul_bytes.eml").read_bytes())
    assert "\x00" not in parsed.text
    assert "NUL bytes removed" in parsed.defects


def test_html_only_becomes_text_without_scripts() -> None:
    parsed = parse_message((NASTY / "html_only.eml").read_bytes())
    assert "us-east-1" in parsed.text and "ECONNRESET" in parsed.text
    assert "alert(1)" not in parsed.text and "color:red" not in parsed.text


def test_big_attachment_is_capped_and_flagged() -> None:
    parsed = parse_message(big_attachment(3 * 1024 * 1024), max_attachment_bytes=1024 * 1024)
    (att,) = parsed.attachments
    assert att.size == 3 * 1024 * 1024
    assert len(att.data) == 1024 * 1024 and att.truncated
    assert any("debug.log" in d for d in parsed.defects)


def test_deep_nesting_reaches_the_text() -> None:
    parsed = parse_message(deeply_nested(80))
    assert "ORA-00942" in parsed.text


@pytest.mark.parametrize("raw", [b"", b"   \r\n  "])
def test_empty_message_is_a_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(raw)
