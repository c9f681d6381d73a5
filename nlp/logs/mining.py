"""Log attachments: decode safely, find the lines that matter, give failures a stable id.

Customers attach logs as plain text, `.gz`, `.zip` or `.tar(.gz)`, all untrusted, so
decoding is streaming and capped twice: by total output bytes and by output/input
ratio (a 20 KB gzip that inflates to gigabytes stops at the cap with a note). Archive
members share one byte budget; archives inside archives are skipped, encrypted members
refused. Nothing here raises on customer data; every problem becomes `LogFinding.note`.

Only "interesting" lines are mined: error levels, exceptions and whole stack traces
(a Python traceback or a Java `at …` block is one event), kills/OOM/segfaults and 4xx/5xx
statuses in access logs. A cheap substring scan over the lowercased text finds them, so
a 200 KB log with a handful of errors costs little more than reading it. The event
lines go through drain3 (in memory, one miner per attachment so results do not depend
on what else the process saw) with generic masks for timestamps, ids, IPs, hex, paths
and numbers. The **signature** of a failure is the first 12 hex of the SHA-1 of its
normalised template: equal for the same failure in different tickets (other timestamps,
hosts, request ids) and independent of drain's per-process cluster ids. A log made of
nothing but errors is mined up to 2,000 events and the rest only counted, so one
attachment cannot keep the runner busy for long.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from itertools import accumulate

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

from nlp.logs.archive import LogSettings, _decode, _unpack, gunzip, is_log_attachment
from nlp.text import clean_line
from nlp.types import Attachment, EvidenceLine, LogFinding

__all__ = [
    "RULES_VERSION",
    "LogSettings",
    "analyse_logs",
    "evidence_text",
    "find_events",
    "gunzip",
    "is_log_attachment",
    "make_template_miner",
    "normalise_template",
    "signature",
]

RULES_VERSION = "log-2"

_MAX_BLOCK_LINES = 50
_MAX_EVIDENCE_BLOCK = 8
_MAX_LINE_CHARS = 1000
_MAX_TEMPLATES = 20
_MAX_EVENTS = 2000


def analyse_logs(
    attachments: Sequence[Attachment], settings: LogSettings | None = None
) -> list[LogFinding]:
    """One finding per log (per member for zip archives); never raises on bad input."""
    settings = settings or LogSettings()
    findings: list[LogFinding] = []
    for attachment in attachments:
        if not is_log_attachment(attachment):
            continue
        try:
            findings.extend(_analyse_attachment(attachment, settings))
        except Exception as exc:  # a last guard: customer data must not break analysis
            findings.append(_empty(attachment.name, f"log analysis failed: {exc!r}"[:300]))
    return findings


def evidence_text(finding: LogFinding) -> str:
    """The text entity offsets of a log finding refer to: evidence lines joined by "\\n"."""
    return "\n".join(line.text for line in finding.evidence)


def _analyse_attachment(attachment: Attachment, settings: LogSettings) -> list[LogFinding]:
    texts, notes = _unpack(attachment, settings)
    findings = [_analyse_text(t.name, _decode(t), t.notes, settings) for t in texts]
    if notes:
        findings.append(_empty(attachment.name, "; ".join(notes)))
    return findings


# --- finding the lines that matter -------------------------------------------------

# Substrings (of the lowercased text) that make a line worth a look. str.find scans
# for each are far cheaper than one regex alternation tried at every position.
_KEYWORDS = (
    "error",
    "fatal",
    "panic",
    "critical",
    "severe",
    "emerg",
    "exception",
    "traceback",
    "killed",
    "segfault",
    "segmentation fault",
    "out of memory",
    "core dumped",
    "sigsegv",
    "sigabrt",
)
_STATUS_KEYS = ("http/", "status")
# Anchored at a "http/" or "status" hit in the lowercased line: a 4xx/5xx status.
_STATUS_AT = re.compile(
    r"(?:http/\d(?:\.\d)?\"\s+|status(?:_code)?\"?\s*[=:]\s*\"?)(?P<code>[45]\d\d)\b"
)
_HARMLESS = re.compile(r"\b(?:0|no) errors?\b|\berrors?[=:]\s*0\b|error_count[=:]\s*0\b")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_CONTINUATION = re.compile(r"^(?:\s+\S|Caused by:|\s*\.\.\. \d+ more)")


@dataclass(frozen=True, slots=True)
class _Event:
    line: int  # 0-based index of the event's first line
    block: tuple[int, ...]  # 0-based indices of all its lines
    key: str  # the text that is mined into a template


def find_events(
    lines: Sequence[str], text: str | None = None, *, max_events: int = _MAX_EVENTS
) -> tuple[list[_Event], int]:
    """Error events in order, and how many candidate lines were left unread after
    `max_events`; a stack trace is one event keyed by its telling line."""
    text = "\n".join(lines) if text is None else text
    starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    lowered = text.lower()
    if len(lowered) != len(text):  # lowercasing moved offsets ("İ"): match case-blind
        lowered = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
    error_at, status_at, end = _candidates(lowered, max_events * 4)
    unread = sum(lowered.count(k, end) for k in (*_KEYWORDS, *_STATUS_KEYS)) if end else 0
    error_lines = {bisect.bisect_right(starts, p) - 1 for p in error_at}
    status_lines = {bisect.bisect_right(starts, p) - 1 for p in status_at}
    hits = sorted(error_lines | status_lines)
    events: list[_Event] = []
    covered = -1
    for n, i in enumerate(hits):
        if len(events) >= max_events:
            return events, len(hits) - n + unread
        if i <= covered or i >= len(lines):
            continue
        line = lines[i]
        is_error = i in error_lines and not _HARMLESS.search(line.lower())
        if not is_error and not (i in status_lines and _bad_status(line.lower())):
            continue
        block, key = _block(lines, i)
        covered = block[-1]
        key = clean_line(key)[:_MAX_LINE_CHARS]
        if not is_error:
            # A 404 and a 502 line differ in one token and drain would merge them; drain
            # routes by the first token, so a leading reason word keeps them apart.
            key = f"HTTP-{_status_word(line)} {key}"
        events.append(_Event(i, block, key))
    return events, unread


def _bad_status(lowered_line: str) -> str:
    """The 4xx/5xx code of an access-log style line, or ""."""
    for key in _STATUS_KEYS:
        at = lowered_line.find(key)
        while at != -1:
            match = _STATUS_AT.match(lowered_line, at)
            if match:
                return match.group("code")
            at = lowered_line.find(key, at + 1)
    return ""


def _status_word(line: str) -> str:
    code = int(_bad_status(line.lower()) or 0)
    try:
        return HTTPStatus(code).phrase.title().replace(" ", "").replace("-", "")
    except ValueError:
        return f"Status{'Client' if code < 500 else 'Server'}Error"


def _candidates(lowered: str, limit: int) -> tuple[list[int], list[int], int]:
    """Error and status keyword offsets (first per line per keyword), and the offset
    where reading stopped because some keyword reached `limit` hits (0: read it all).

    Beyond that offset nothing is kept for any keyword, so the hits stay in order."""
    per_key = {k: _positions(lowered, k, limit) for k in (*_KEYWORDS, *_STATUS_KEYS)}
    full = [hits[-1] for hits in per_key.values() if len(hits) >= limit]
    end = min(full) + 1 if full else 0

    def keep(keys: Sequence[str]) -> list[int]:
        return [p for k in keys for p in per_key[k] if not end or p < end]

    return keep(_KEYWORDS), keep(_STATUS_KEYS), end


def _positions(lowered: str, keyword: str, limit: int) -> list[int]:
    """Offsets of the first hit of `keyword` per line, at most `limit` of them."""
    positions: list[int] = []
    at = lowered.find(keyword)
    while at != -1 and len(positions) < limit:
        positions.append(at)
        line_end = lowered.find("\n", at)
        if line_end == -1:
            break
        at = lowered.find(keyword, line_end)
    return positions


def _block(lines: Sequence[str], i: int) -> tuple[tuple[int, ...], str]:
    end = i + 1
    limit = min(len(lines), i + _MAX_BLOCK_LINES)
    if _TRACEBACK.search(lines[i]):
        while end < limit and _CONTINUATION.match(lines[end]):
            end += 1
        if end < limit and lines[end].strip():
            end += 1  # the final "ValueError: …" line tells which failure it was
        return tuple(range(i, end)), lines[end - 1]
    while end < limit and _CONTINUATION.match(lines[end]):
        end += 1
    return tuple(range(i, end)), lines[i]


# --- templates and signatures ------------------------------------------------------

_MASKS: tuple[tuple[str, str], ...] = (
    # Values whose token count varies would split one event across drain's
    # length-first tree: "bytes (1.16 KB) sent" beside "bytes sent", "lifetime <1 sec"
    # beside "lifetime 00:01". A parenthesised size joins the word before it and a
    # compact duration is one token; "198 seconds" stays two, as it always is.
    # (?<!\s): a long run of blanks is tried once, not once per blank.
    (r"(?<!\s)\s*\(\s*\d+(?:\.\d+)?\s*[KMGT]i?B\s*\)", "SIZE"),
    (r"<\d+(?:\.\d+)?\s?(?:ms|msec|secs?|s)\b|\b\d+(?:\.\d+)?(?:ms|msec|secs?|s|mins?)\b", "NUM"),
    # Flag values after = or : ("overlap:false", "ws=null") vary like numbers do. A "no"
    # after a colon starts the failure's own words ("TNS:no listener"), so only "=no".
    # Python and Java spell them True/None/TRUE too.
    (r"(?<=[=:])(?:[Tt]rue|TRUE|[Ff]alse|FALSE|null|NULL|[Nn]one|yes)\b|(?<==)no\b", "VAL"),
    # An endpoint is an endpoint whether it is written as an IP or a name, and a
    # forwarded-for list of IPs is one value.
    (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}(?![\w.])", "HOST"),
    (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?:,\d{1,3}(?:\.\d{1,3}){3})+(?![\w.])", "IP"),
    (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "TS"),
    (r"\d{1,2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?: [+-]\d{4})?", "TS"),
    (r"\b[A-Z][a-z]{2}\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}\b", "TS"),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "TIME"),
    (r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b", "DATE"),
    (r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b", "UUID"),
    (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])", "IP"),
    (r"(?<![\w.-])(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*:\d{1,5}(?![\w.])", "HOST"),
    (r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}(?![\w:])", "IP"),
    (r"\b0x[0-9a-fA-F]+\b", "HEX"),
    (r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b", "HEX"),
    (r"(?<![\w.])(?:/[\w.@%+-]+){2,}/?", "PATH"),
    # Numbers, except the ones that name the failure: ORA-00942, "exit code 137", a
    # status after a quoted request line, "status=503", SQLSTATE.
    (
        r"(?<![A-Za-z0-9])(?<![A-Z]{3}-)(?<!code )(?<!code=)(?<!status=)(?<!status )"
        r"(?<!\" )(?<!SQLSTATE )(?<!HTTP )[-+]?\d+(?:\.\d+)?(?![A-Za-z0-9])",
        "NUM",
    ),
)
_ANY_MASK = re.compile(r"<(?:[A-Z]+|\*)>")
_REPEATED_MASK = re.compile(r"<\*>(?:\s*<\*>)+")


def make_template_miner(sim_th: float = 0.7, depth: int = 5) -> TemplateMiner:
    """An in-memory drain3 miner with our generic masks (no files, no persistence).

    sim_th is stricter than drain3's 0.4: merging two different failures into one
    signature is worse for a rep than showing the same failure as two templates.
    depth 5 routes by the first two tokens (drain3 counts the root and the length
    layer), so `10.0.0.1 "GET …"` and `10.0.0.1 "POST …"` are never compared at all.
    """
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.masking_instructions = [MaskingInstruction(p, name) for p, name in _MASKS]
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_max_children = 100
    config.parametrize_numeric_tokens = True
    # drain3 announces every new miner at INFO; we make one per attachment.
    logging.getLogger("drain3.template_miner").setLevel(logging.WARNING)
    return TemplateMiner(persistence_handler=None, config=config)


def normalise_template(template: str) -> str:
    masked = _ANY_MASK.sub("<*>", " ".join(template.split()))
    return _REPEATED_MASK.sub("<*>", masked)


def signature(template: str) -> str:
    """Stable id of a failure template: first 12 hex of SHA-1 of the normalised form."""
    return hashlib.sha1(normalise_template(template).encode("utf-8")).hexdigest()[:12]


def _analyse_text(name: str, text: str, notes: list[str], settings: LogSettings) -> LogFinding:
    if text.endswith("\n"):
        text = text[:-1]
    lines = text.split("\n") if text else []
    events, unread = find_events(lines, text, max_events=_MAX_EVENTS)
    if unread:
        # Every error line through drain would make a log of only errors cost seconds.
        notes.append(
            f"templates mined from the first {_MAX_EVENTS:,} error events; "
            f"about {unread:,} more candidate lines counted, not mined"
        )
    if not events:
        return LogFinding(name, len(lines), 0, "", "", note="; ".join(notes))
    miner = make_template_miner()
    clusters = [miner.add_log_message(event.key)["cluster_id"] for event in events]
    templates = {c.cluster_id: normalise_template(c.get_template()) for c in miner.drain.clusters}
    ranked = _rank(clusters)
    top = ranked[0][0]
    return LogFinding(
        attachment=name,
        total_lines=len(lines),
        error_lines=sum(len(e.block) for e in events) + unread,
        signature=signature(templates[top]),
        template=templates[top],
        evidence=tuple(_evidence(lines, events, clusters, settings.max_evidence_lines)),
        templates=tuple(
            (signature(templates[c]), templates[c], n) for c, n in ranked[:_MAX_TEMPLATES]
        ),
        note="; ".join(notes),
    )


def _rank(clusters: list[int]) -> list[tuple[int, int]]:
    counts: dict[int, int] = {}
    for c in clusters:
        counts[c] = counts.get(c, 0) + 1
    first = {c: clusters.index(c) for c in counts}
    return sorted(counts.items(), key=lambda kv: (-kv[1], first[kv[0]]))


def _evidence(
    lines: Sequence[str], events: list[_Event], clusters: list[int], cap: int
) -> Iterator[EvidenceLine]:
    """First occurrence of each template (whole block, trimmed), first error first."""
    seen: set[int] = set()
    emitted = 0
    for event, cluster in zip(events, clusters, strict=True):
        if cluster in seen:
            continue
        seen.add(cluster)
        block = list(event.block)
        if len(block) > _MAX_EVIDENCE_BLOCK:
            block = block[: _MAX_EVIDENCE_BLOCK - 1] + block[-1:]
        for index in block:
            if emitted >= cap:
                return
            emitted += 1
            yield EvidenceLine(index + 1, clean_line(lines[index])[:_MAX_LINE_CHARS])


def _empty(name: str, note: str) -> LogFinding:
    return LogFinding(
        attachment=name, total_lines=0, error_lines=0, signature="", template="", note=note
    )
