"""All the log attachments of one message share one decompression budget.

Each attachment is capped on its own, so a mail with fifty capped gzip bombs used to
inflate fifty caps' worth. The mail here is real MIME bytes read by the gateway's parser;
its attachments then go through `analyse_logs` as the analysis step hands them over.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from email.message import EmailMessage

from gateway.inbound.parse import parse_message
from nlp.logs.mining import LogSettings, analyse_logs

MiB = 1024 * 1024
LINE = b"2026-11-26 10:00:01 ERROR db-3: connection refused (pool exhausted)\n"
SETTINGS = LogSettings(max_log_bytes=MiB, max_compression_ratio=100_000, max_message_bytes=3 * MiB)


def bomb_mail(count: int, *, zipped: bool = False) -> bytes:
    """A support mail with `count` small attachments that each inflate to 8 MiB."""
    inflated = LINE * (8 * MiB // len(LINE))
    msg = EmailMessage()
    msg["From"] = "Mallory <mallory@customer.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "Logs attached"
    msg.set_content("The database keeps refusing connections, logs attached.\n")
    for n in range(count):
        if zipped:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(f"db-{n}.log", inflated)
            data, subtype, name = buffer.getvalue(), "zip", f"logs-{n}.zip"
        else:
            data, subtype, name = gzip.compress(inflated, 9), "gzip", f"db-{n}.log.gz"
        msg.add_attachment(data, maintype="application", subtype=subtype, filename=name)
    return msg.as_bytes()


def test_fifty_gzip_bombs_share_one_budget() -> None:
    parsed = parse_message(bomb_mail(50))
    assert len(parsed.attachments) == 50
    findings = analyse_logs(parsed.attachments, SETTINGS)
    assert len(findings) == 50
    read, skipped = findings[:3], findings[3:]
    # Three attachments' worth of text in all (each cut mid-line), then nothing more.
    assert sum(f.total_lines for f in read) == 3 * (MiB // len(LINE) + 1)
    assert all(f.signature for f in read)
    assert "the message's log budget of 3 MiB was used up here" in read[2].note
    assert all("budget" not in f.note for f in read[:2])
    for finding in skipped:
        assert finding.total_lines == 0 and not finding.signature
        assert finding.note == (
            "not read: the message's log budget of 3 MiB was used up by the attachments before it"
        )
    # The failure is still recognised, with the same signature in every log read.
    assert len({f.signature for f in read}) == 1


def test_zip_members_count_against_the_same_budget() -> None:
    findings = analyse_logs(parse_message(bomb_mail(10, zipped=True)).attachments, SETTINGS)
    assert [bool(f.signature) for f in findings] == [True] * 3 + [False] * 7
    assert findings[2].note.startswith("decompression stopped at 1 MiB")
    assert "log budget of 3 MiB was used up here" in findings[2].note


def test_default_budget_is_three_logs_worth() -> None:
    assert LogSettings().message_budget == 3 * LogSettings().max_log_bytes
    assert LogSettings(max_log_bytes=MiB).message_budget == 3 * MiB
    assert LogSettings(max_message_bytes=5 * MiB).message_budget == 5 * MiB
    # A mail within the budget reads as before: no budget note anywhere.
    findings = analyse_logs(parse_message(bomb_mail(2)).attachments, SETTINGS)
    assert all("budget" not in f.note for f in findings)
