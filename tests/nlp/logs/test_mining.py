"""Log attachments: detection, capped decoding, events, signatures and evidence lines."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from nlp.logs.mining import (
    LogSettings,
    analyse_logs,
    evidence_text,
    gunzip,
    is_log_attachment,
    make_template_miner,
    signature,
)
from nlp.types import Attachment, LogFinding

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"
MiB = 1024 * 1024


def attachment(name: str, data: bytes, content_type: str = "text/plain") -> Attachment:
    return Attachment(name=name, content_type=content_type, size=len(data), data=data)


def fixture(name: str) -> Attachment:
    return attachment(name, (LOGS / name).read_bytes())


def one(findings: list[LogFinding]) -> LogFinding:
    assert len(findings) == 1, findings
    return findings[0]


def zip_bytes(members: dict[str, bytes], encrypted: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    raw = bytearray(buf.getvalue())
    for name in encrypted:
        _set_encrypted_flag(raw, name.encode())
    return bytes(raw)


def _set_encrypted_flag(raw: bytearray, name: bytes) -> None:
    """Set bit 0 ("encrypted") in the member's local and central headers, as zip tools do.

    zipfile cannot write encrypted members, and the reader only looks at the flag
    before refusing, so flipping the bit is an honest stand-in for a real one.
    """
    for magic, flag_at, name_len_at, name_at in (
        (b"PK\x03\x04", 6, 26, 30),
        (b"PK\x01\x02", 8, 28, 46),
    ):
        at = raw.find(magic)
        while at != -1:
            length = int.from_bytes(raw[at + name_len_at : at + name_len_at + 2], "little")
            if bytes(raw[at + name_at : at + name_at + length]) == name:
                raw[at + flag_at] |= 0x1
            at = raw.find(magic, at + 4)


# --- what is a log ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ctype", "data", "expected"),
    [
        ("app.log", "text/plain", b"hello", True),
        ("app.log", "application/octet-stream", b"\x00\x01binary", True),
        ("trace.out", "application/octet-stream", b"x", True),
        ("blob.bin", "application/octet-stream", b"INFO all good\nERROR bad\n", True),
        ("blob.bin", "application/octet-stream", bytes(range(256)) * 4, False),
        ("photo.png", "image/png", b"\x89PNG....", False),
        ("page.html", "text/html", b"<p>hi</p>", False),
        ("logs.gz", "application/gzip", gzip.compress(b"x"), True),
        ("bundle.zip", "application/zip", zip_bytes({"a.log": b"x"}), True),
    ],
)
def test_is_log_attachment(name: str, ctype: str, data: bytes, expected: bool) -> None:
    assert is_log_attachment(attachment(name, data, ctype)) is expected


def test_non_logs_give_no_findings() -> None:
    assert analyse_logs([attachment("photo.png", b"\x89PNG\r\n", "image/png")]) == []


# --- events, blocks, evidence ---------------------------------------------------------


def test_evidence_line_numbers_and_whole_traceback() -> None:
    finding = one(analyse_logs([fixture("checkout_a.log")]))
    assert finding.total_lines == 13
    lines = (LOGS / "checkout_a.log").read_text().splitlines()
    for line in finding.evidence:
        assert lines[line.line_no - 1] == line.text
    numbers = [e.line_no for e in finding.evidence]
    # First error, then the whole traceback block (7..12); the repeat on line 6 is not
    # evidence again, and "0 errors" on line 13 is not an error.
    assert numbers == [4, 7, 8, 9, 10, 11, 12]
    assert finding.error_lines == 2 + 6


def test_dominant_template_and_template_counts() -> None:
    finding = one(analyse_logs([fixture("checkout_a.log")]))
    assert "connection to <*> refused" in finding.template
    counts = {tpl: n for _, tpl, n in finding.templates}
    assert counts[finding.template] == 2
    assert counts["ConnectionError: payment provider reset the connection"] == 1
    assert finding.signature == signature(finding.template)
    assert len(finding.signature) == 12


def test_same_failure_in_different_logs_has_the_same_signature() -> None:
    a = one(analyse_logs([fixture("checkout_a.log")]))
    b = one(analyse_logs([fixture("checkout_b.log")]))
    assert a.signature == b.signature
    assert {s for s, _, _ in a.templates} == {s for s, _, _ in b.templates}


def test_different_failures_have_different_signatures() -> None:
    sigs = {one(analyse_logs([fixture(n)])).signature for n in ("checkout_a.log", "java_oom.log")}
    sigs.add(one(analyse_logs([fixture("access.log")])).signature)
    sigs.add(one(analyse_logs([fixture("k8s_events.log")])).signature)
    assert len(sigs) == 4


def test_signature_does_not_depend_on_what_the_process_saw_before() -> None:
    first = one(analyse_logs([fixture("checkout_b.log")])).signature
    analyse_logs([fixture("java_oom.log"), fixture("access.log")])
    assert one(analyse_logs([fixture("checkout_b.log")])).signature == first


def test_java_stack_trace_is_one_block() -> None:
    finding = one(analyse_logs([fixture("java_oom.log")]))
    numbers = [e.line_no for e in finding.evidence]
    assert numbers == [2, 3, 4, 5, 6, 7, 8]
    assert any("OutOfMemoryError" in tpl for _, tpl, _ in finding.templates)


def test_access_log_flags_only_4xx_and_5xx() -> None:
    finding = one(analyse_logs([fixture("access.log")]))
    assert finding.error_lines == 3
    assert [e.line_no for e in finding.evidence] == [3, 5]
    assert " 502 " in finding.template


def test_kills_and_oom_are_found() -> None:
    finding = one(analyse_logs([fixture("k8s_events.log")]))
    assert [e.line_no for e in finding.evidence] == [2, 3]


def test_evidence_is_capped() -> None:
    lines = [f"ERROR failure kind{i} happened" for i in range(40)]
    data = "\n".join(f"{w} x{i}" for i, w in enumerate(lines)).encode()
    finding = one(analyse_logs([attachment("many.log", data)], LogSettings(max_evidence_lines=5)))
    assert len(finding.evidence) == 5


def test_log_without_errors_has_no_signature() -> None:
    finding = one(analyse_logs([attachment("ok.log", b"INFO fine\nINFO still fine\n")]))
    assert (finding.total_lines, finding.error_lines, finding.signature) == (2, 0, "")


def test_latin1_log_is_decoded_with_a_note() -> None:
    finding = one(analyse_logs([fixture("latin1.log")]))
    assert "café" in finding.evidence[0].text
    assert "Latin-1" in finding.note


def test_terminal_escapes_are_removed_from_evidence() -> None:
    data = b"\x1b[31mERROR\x1b[0m disk full on /dev/sda1\x00\n"
    finding = one(analyse_logs([attachment("color.log", data)]))
    assert finding.evidence[0].text == "ERROR disk full on /dev/sda1"


def test_evidence_text_is_what_offsets_refer_to() -> None:
    finding = one(analyse_logs([fixture("java_oom.log")]))
    assert evidence_text(finding).split("\n") == [e.text for e in finding.evidence]


# --- gzip ---------------------------------------------------------------------------------


def test_gzip_log_is_analysed_like_plain_text() -> None:
    raw = (LOGS / "checkout_b.log").read_bytes()
    plain = one(analyse_logs([attachment("b.log", raw)]))
    packed = one(analyse_logs([attachment("b.log.gz", gzip.compress(raw), "application/gzip")]))
    assert (packed.signature, packed.evidence, packed.note) == (plain.signature, plain.evidence, "")


def test_gzip_bomb_stops_at_the_size_cap_with_bounded_memory() -> None:
    bomb = gzip.compress(b"A" * (16 * MiB), compresslevel=9)
    assert len(bomb) < 64 * 1024
    settings = LogSettings(max_log_bytes=2 * MiB, max_compression_ratio=10_000)
    tracemalloc.start()
    try:
        finding = one(analyse_logs([attachment("bomb.log.gz", bomb, "application/gzip")], settings))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert finding.note == "decompression stopped at 2 MiB (size cap)"
    assert peak < 12 * MiB


def test_gzip_bomb_stops_at_the_ratio_cap() -> None:
    bomb = gzip.compress(b"B" * (8 * MiB), compresslevel=9)
    out, note = gunzip(bomb, 20 * MiB, 50)
    assert len(out) == len(bomb) * 50
    assert note.endswith("(ratio cap)")


def test_corrupt_gzip_gives_a_note_not_an_exception() -> None:
    data = b"\x1f\x8b\x08\x00garbage that is not deflate data at all"
    finding = one(analyse_logs([attachment("bad.log.gz", data, "application/gzip")]))
    assert "corrupt gzip" in finding.note


def test_truncated_gzip_keeps_what_was_readable() -> None:
    raw = (LOGS / "checkout_a.log").read_bytes()
    data = gzip.compress(raw)[:-40]
    finding = one(analyse_logs([attachment("cut.log.gz", data, "application/gzip")]))
    assert "ends early" in finding.note
    assert finding.evidence and finding.evidence[0].line_no == 4


def test_multi_member_gzip_is_read_completely() -> None:
    data = gzip.compress(b"INFO a\n") + gzip.compress(b"ERROR second member\n")
    finding = one(analyse_logs([attachment("two.gz", data, "application/gzip")]))
    assert [e.line_no for e in finding.evidence] == [2]


# --- zip ----------------------------------------------------------------------------------


def test_zip_members_nested_archive_and_encrypted_member() -> None:
    inner = zip_bytes({"deep.log": b"ERROR deep\n"})
    data = zip_bytes(
        {
            "logs/app.log": (LOGS / "java_oom.log").read_bytes(),
            "logs/old.log.gz": gzip.compress((LOGS / "access.log").read_bytes()),
            "nested.zip": inner,
            "secret.log": b"ERROR hidden\n",
        },
        encrypted=("secret.log",),
    )
    findings = analyse_logs([attachment("bundle.zip", data, "application/zip")])
    by_name = {f.attachment: f for f in findings}
    assert set(by_name) == {"bundle.zip:logs/app.log", "bundle.zip:logs/old.log.gz", "bundle.zip"}
    assert by_name["bundle.zip:logs/app.log"].evidence[0].line_no == 2
    assert by_name["bundle.zip:logs/old.log.gz"].error_lines == 3
    note = by_name["bundle.zip"].note
    assert "nested.zip: nested archive skipped" in note
    assert "secret.log: encrypted member not opened" in note


def test_zip_member_bomb_is_capped() -> None:
    data = zip_bytes({"big.log": b"C" * (8 * MiB)})
    settings = LogSettings(max_log_bytes=MiB, max_compression_ratio=100_000)
    finding = one(analyse_logs([attachment("b.zip", data, "application/zip")], settings))
    assert finding.attachment == "b.zip:big.log"
    assert finding.note == "decompression stopped at 1 MiB (size cap)"


def test_broken_zip_gives_a_note() -> None:
    data = b"PK\x03\x04" + b"\x00" * 40
    finding = one(analyse_logs([attachment("broken.zip", data, "application/zip")]))
    assert "not a readable zip archive" in finding.note


# --- tar ----------------------------------------------------------------------------------


def tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_gz_support_bundle_is_read_member_by_member() -> None:
    data = tar_gz(
        {
            "bundle/app.log": (LOGS / "java_oom.log").read_bytes(),
            "bundle/old.log.gz": gzip.compress((LOGS / "access.log").read_bytes()),
            "bundle/inner.zip": zip_bytes({"x.log": b"ERROR x\n"}),
            "bundle/core.bin": bytes(range(256)) * 8,
        }
    )
    findings = analyse_logs([attachment("support.tar.gz", data, "application/gzip")])
    by_name = {f.attachment: f for f in findings}
    assert by_name["support.tar.gz:bundle/app.log"].evidence[0].line_no == 2
    assert by_name["support.tar.gz:bundle/old.log.gz"].error_lines == 3
    note = by_name["support.tar.gz"].note
    assert "bundle/inner.zip: nested archive skipped" in note
    assert by_name["support.tar.gz:bundle/core.bin"].note == "binary member skipped"


def test_tar_members_share_one_byte_budget() -> None:
    member = gzip.compress(b"D" * (3 * MiB))
    data = tar_gz({f"part{i}.log.gz": member for i in range(4)})
    settings = LogSettings(max_log_bytes=4 * MiB, max_compression_ratio=100_000)
    findings = analyse_logs([attachment("parts.tar.gz", data, "application/gzip")], settings)
    read = sum(f.total_lines for f in findings if f.attachment != "parts.tar.gz")
    assert read == 2  # one whole member and part of a second; each is a single line
    assert "read already" in next(f.note for f in findings if f.attachment == "parts.tar.gz")


def test_line_numbers_hold_when_lowercasing_changes_length() -> None:
    data = "İİİİ INFO start\nİstanbul node ok\nERROR İzmir unreachable\n".encode()
    finding = one(analyse_logs([attachment("tr.log", data)]))
    assert [(e.line_no, e.text) for e in finding.evidence] == [(3, "ERROR İzmir unreachable")]


def test_log_of_only_errors_is_mined_up_to_a_cap_and_counted() -> None:
    data = b"".join(b"ERROR job %d failed\n" % i for i in range(30_000))
    finding = one(analyse_logs([attachment("all-errors.log", data)]))
    assert finding.total_lines == 30_000
    assert finding.error_lines == 30_000
    assert finding.template == "job <*> failed"  # mined from the message, not the level
    assert "templates mined from the first 2,000 error events" in finding.note


def _clusters(lines: list[str]) -> list[int]:
    miner = make_template_miner()
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def test_optional_sizes_and_durations_do_not_split_one_event() -> None:
    lines = [
        "proxy.example.org:5070 close, 403 bytes sent, 426 bytes received, lifetime 00:01",
        "10.0.0.7:443 close, 1190 bytes (1.16 KB) sent, 3014 bytes (2.94 KB) received, "
        "lifetime <1 sec",
        "www.example.com:443 close, 451 bytes sent, 18620 bytes (18.1 KB) received, lifetime 2s",
        "db-1.internal:5432 close, 9 bytes sent, 7 bytes received, lifetime 01:12",
    ]
    assert len(set(_clusters(lines))) == 1


def test_flag_values_vary_like_numbers_but_methods_do_not() -> None:
    flags = ["updateClipping isOverlap:false, top=3", "updateClipping isOverlap:true, top=9"]
    assert len(set(_clusters(flags))) == 1
    requests = [
        '10.1.1.1 "GET /v2/abc/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.24',
        '10.1.1.1,10.2.2.2 "GET /v2/def/servers/detail HTTP/1.1" status: 200 len: 18 time: 0.2',
        '10.1.1.1 "POST /v2/abc/os-server-external-events HTTP/1.1" status: 200 len: 380 time: 0.1',
    ]
    get1, get2, post = _clusters(requests)
    assert get1 == get2 != post


def test_seconds_spelled_out_keep_their_word() -> None:
    """'over 198 seconds' and 'over 5 retries' are different events of the same shape."""
    miner = make_template_miner()
    miner.add_log_message("ddr errors detected and corrected over 198 seconds")
    template = miner.add_log_message("ddr errors detected and corrected over 4562 seconds")
    assert template["template_mined"].endswith("<NUM> seconds")


def test_flag_values_in_any_usual_spelling_vary_like_numbers() -> None:
    lines = [
        "worker ready=True cached=None in pool main",
        "worker ready=False cached=none in pool main",
        "worker ready=TRUE cached=NULL in pool main",
    ]
    assert len(set(_clusters(lines))) == 1
