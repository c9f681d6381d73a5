"""Logs without an ERROR line still explain a ticket: warnings, JSON levels, slow SQL."""

from __future__ import annotations

from nlp.logs.mining import analyse_logs
from nlp.types import Attachment


def _log(name: str, text: str) -> Attachment:
    data = text.encode()
    return Attachment(name=name, content_type="text/plain", size=len(data), data=data)


def test_a_warn_only_log_gives_a_warning_finding_with_its_line() -> None:
    text = (
        "2026-11-02 10:00:01 INFO starting worker\n"
        "2026-11-02 10:00:02 WARN connection pool exhausted (max=20), waiting for a slot\n"
        "2026-11-02 10:00:03 INFO request served\n"
    )
    [finding] = analyse_logs([_log("worker.log", text)])
    assert finding.level == "warning"
    assert finding.error_lines == 0 and finding.warning_lines == 1
    assert [line.line_no for line in finding.evidence] == [2]
    assert "pool exhausted" in finding.evidence[0].text


def test_a_json_log_at_level_warn_is_read() -> None:
    text = (
        '{"ts":"2026-11-02T10:00:01Z","level":"info","msg":"ok"}\n'
        '{"ts":"2026-11-02T10:00:02Z","level":"warn","msg":"retrying upstream api-gw-01"}\n'
    )
    [finding] = analyse_logs([_log("app.jsonl.log", text)])
    assert finding.level == "warning"
    assert "retrying upstream" in finding.evidence[0].text


def test_a_postgres_slow_query_log_gives_the_statement() -> None:
    text = (
        "2026-11-02 10:00:01 UTC [811] LOG:  checkpoint complete\n"
        "2026-11-02 10:00:09 UTC [812] LOG:  duration: 5234.118 ms  statement: "
        "SELECT * FROM orders WHERE customer_id = 42\n"
    )
    [finding] = analyse_logs([_log("postgresql.log", text)])
    assert finding.level == "warning"
    assert "SELECT * FROM orders" in finding.evidence[0].text


def test_errors_win_over_warnings() -> None:
    text = "WARN disk 91% full\nERROR could not write block 7: No space left on device\n"
    [finding] = analyse_logs([_log("db.log", text)])
    assert finding.level == "error" and finding.error_lines == 1
    assert finding.evidence[0].text.startswith("ERROR could not write")


def test_a_quiet_log_has_no_finding_lines() -> None:
    [finding] = analyse_logs([_log("ok.log", "INFO all good\nINFO still good\n")])
    assert finding.evidence == () and finding.error_lines == 0 and finding.warning_lines == 0
