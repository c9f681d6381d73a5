"""One failure has one signature whatever format logged it; evidence stays the line as sent."""

from __future__ import annotations

import pytest

from nlp.logs.mining import analyse_logs
from nlp.logs.records import message_of
from nlp.types import Attachment, LogFinding

FAILURE = "upstream connect error: 503 Service Unavailable from lb-eu-central-1"
FORMATS = {
    "plain": f"2026-11-20 14:12:03 ERROR {FAILURE} (request id 8f2a91c0d3)",
    "bracketed level": f"2026-11-20 14:12:03 [ERROR] {FAILURE}",
    "python asctime": f"2026-11-20 14:12:03,123 - app.client - ERROR - {FAILURE}",
    "python basic": f"ERROR:app.client:{FAILURE}",
    "logback": f"2026-11-20T14:12:03.123Z ERROR [worker-3] app.client - {FAILURE}",
    "json": (
        '{"ts":"2026-11-20T14:12:03Z","level":"error","logger":"app.client",'
        f'"msg":"{FAILURE}","request_id":"8f2a91c0d3"}}'
    ),
    "json severity": f'{{"severity":"ERROR","message":"{FAILURE}","pid":4242}}',
    "logfmt": (
        f'ts=2026-11-20T14:12:03Z level=error logger=app.client msg="{FAILURE}" '
        "request_id=8f2a91c0d3"
    ),
    "syslog": f"Nov 20 14:12:03 web-1 app[4242]: ERROR {FAILURE}",
}


def _log(text: str, name: str = "app.log") -> Attachment:
    data = text.encode()
    return Attachment(name=name, content_type="text/plain", size=len(data), data=data)


def _finding(text: str) -> LogFinding:
    [finding] = analyse_logs([_log(text)])
    assert not finding.note, finding.note
    return finding


def test_each_format_of_one_failure_gives_the_same_signature_and_template() -> None:
    findings = {name: _finding(f"{line}\n") for name, line in FORMATS.items()}
    assert len({f.signature for f in findings.values()}) == 1, {
        name: f.template for name, f in findings.items()
    }
    template = findings["plain"].template
    assert template.startswith("upstream connect error:") and "ERROR" not in template
    assert "request" not in template and "14:12" not in template


def test_one_log_mixing_the_formats_mines_them_as_one_template() -> None:
    finding = _finding("\n".join(FORMATS.values()))
    assert finding.templates == ((finding.signature, finding.template, len(FORMATS)),)
    assert finding.signature == _finding(FORMATS["plain"]).signature


def test_different_failures_keep_different_signatures() -> None:
    failures = (
        "TLS handshake with api.example.com failed: certificate has expired",
        "TLS handshake with api.example.com failed: connection refused",
        "permission denied for role reporting",
    )
    formats = (FORMATS["plain"].replace(FAILURE, "{}"), '{{"level":"error","msg":"{}"}}')
    signatures = {
        failure: {_finding(fmt.format(failure)).signature for fmt in formats}
        for failure in failures
    }
    assert all(len(per_format) == 1 for per_format in signatures.values()), signatures
    assert len({s for per_format in signatures.values() for s in per_format}) == len(failures)


def test_varying_request_ids_ports_durations_and_timestamps_keep_one_signature() -> None:
    lines = [
        "2026-11-20 14:12:03 ERROR upstream connect error: 503 from lb-1.example.net:8443 "
        "after 1532ms at 2026-11-20T14:12:03Z (request id 8f2a91c0d3)",
        "2026-12-01 09:00:59,870 ERROR upstream connect error: 503 from lb-1.example.net:9443 "
        "after 2.5s at 2026-12-01 09:00:59.870+01:00 request_id=req_01HFZK3QX",
        "2027-01-05T23:59:01Z ERROR upstream connect error: 503 from 10.20.30.40:443 "
        "after 1m2.5s at 2027-01-05T23:59:01Z [trace_id=4bf92f3577b34da6a3ce929d0e0e4736]",
        '{"time":"2027-02-01T00:00:00Z","level":"error","msg":"upstream connect error: 503 from '
        'lb-2.example.net:8080 after 850µs at 2027-02-01T00:00:00Z","request_id":"x-9"}',
    ]
    signatures = {_finding(line).signature for line in lines}
    assert len(signatures) == 1


@pytest.mark.parametrize("name", FORMATS)
def test_evidence_shows_the_line_as_sent(name: str) -> None:
    finding = _finding(f"2026-11-20 14:12:02 INFO started\n{FORMATS[name]}\n")
    assert [(e.line_no, e.text) for e in finding.evidence] == [(2, FORMATS[name])]


def test_evidence_of_a_mixed_log_is_the_first_line_as_sent() -> None:
    finding = _finding("\n".join(FORMATS[name] for name in ("json", "python basic", "syslog")))
    assert [(e.line_no, e.text) for e in finding.evidence] == [(1, FORMATS["json"])]


def test_the_level_still_decides_between_error_and_warning_findings() -> None:
    warning = _finding('{"level":"warn","msg":"retrying upstream api-gw-01"}\n')
    assert warning.level == "warning" and warning.template == "retrying upstream api-gw-<*>"
    error = _finding("2026-11-20 14:12:03 ERROR retrying upstream api-gw-01\n")
    assert error.level == "error" and error.signature == warning.signature


@pytest.mark.parametrize(
    ("line", "template"),
    [
        ('"ERROR disk full on /var/lib/postgresql"', "disk full on <*>"),
        ('["error", "disk full"]', '["error", "disk full"]'),
        ('{"level":"error","status":502,"path":"/api/pay"}', "path=<*> status=502"),
        (
            '{"level":"error","event":"payment failed","error":{"message":"card declined"}}',
            "payment failed: card declined",
        ),
        ('{"level":"error","msg":"upstream connect err', "upstream connect err"),
    ],
)
def test_json_lines_without_a_usual_message_are_mined_sanely(line: str, template: str) -> None:
    finding = _finding(line)
    assert finding.template == template
    assert finding.evidence[0].text == line


def test_a_json_record_without_a_message_ignores_when_and_how_loud() -> None:
    a = _finding('{"ts":"2026-11-20T14:12:03Z","level":"error","status":502,"path":"/pay"}')
    b = _finding('{"path":"/pay","severity":"ERROR","status":502,"time":"2027-01-01T00:00Z"}')
    assert a.signature == b.signature


@pytest.mark.parametrize(
    "line",
    [
        '{"level": "error", broken',
        '{"level":"error","msg":"unterminated \\',
        "{" * 50_000 + '"error"',
        '{"error": ' * 20_000 + "1" + "}" * 20_000,
        '{"msg": 42, "level": "error"}',
        '{"error": null, "err": false, "msg": ""}',
    ],
)
def test_malformed_or_odd_json_does_not_break_mining(line: str) -> None:
    finding = _finding(f"INFO start\n{line}\n")
    assert finding.signature and finding.error_lines == 1
    assert finding.evidence[0].text == line[:1000]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Nov 27 09:59:13 node-3 kernel: Out of memory: Killed process 4242", "Out of memory:"),
        ("<34>1 2026-11-20T14:12:03.003Z web-1 app 4242 ID47 - disk full", "disk full"),
        ("E1120 14:12:03.123456    1234 client.go:88] disk full", "disk full"),
        ("2026/11/20 14:12:03 [error] 123#0: *45 disk full", "disk full"),
        ("[2026-11-20T14:12:03Z ERROR app::store] disk full", "disk full"),
        ('2026-11-20T14:12:03Z stdout F {"level":"error","msg":"disk full"}', "disk full"),
        ('{"log":"2026-11-20 14:12:03 ERROR disk full\\n","stream":"stderr"}', "disk full"),
        ("14:12:03.123 [main] ERROR c.e.Store - disk full", "disk full"),
        # The message's own first words are not mistaken for a prefix.
        ("2026-11-20 14:12:03 db error: connection refused", "db error: connection refused"),
        ("2026-11-20 14:12:03 ERROR Timeout - giving up", "Timeout - giving up"),
        ("ConnectionError: payment provider reset the connection", "ConnectionError: payment"),
        ('ERROR: relation "orders" does not exist', 'relation "orders" does not exist'),
        ("ERROR", "ERROR"),
    ],
)
def test_message_of_common_prefixes(line: str, message: str) -> None:
    assert message_of(line).startswith(message)
