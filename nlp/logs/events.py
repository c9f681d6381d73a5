"""Finding the lines of a log that matter, before any mining.

Error levels, exceptions and whole stack traces (a Python traceback or a Java `at …`
block is one event), kills/OOM/segfaults and 4xx/5xx statuses in access logs. A cheap
substring scan over the lowercased text finds them, so a 200 KB log with a handful of
errors costs little more than reading it.

A log with no error at all can still explain a ticket: a WARN-only log of retries, a
JSON log at level "warn", a database log of slow statements. `find_events` takes its
keywords as a parameter so the same scan runs a second, weaker pass for those
(`WARNING_KEYWORDS`); the caller says which pass produced a finding.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from itertools import accumulate

from nlp.logs.records import message_of
from nlp.text import clean_line

_MAX_EVENTS = 2000
_MAX_BLOCK_LINES = 50
MAX_LINE_CHARS = 1000

# Substrings (of the lowercased text) that make a line worth a look. str.find scans
# for each are far cheaper than one regex alternation tried at every position.
ERROR_KEYWORDS = (
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
# The second pass, for a log without errors: warnings (plain, or a JSON "level"
# field), slow statements (PostgreSQL `duration: … ms`, MySQL `# Query_time:`),
# timeouts, deadlocks and retries.
WARNING_KEYWORDS = (
    "warn",
    "slow query",
    "duration:",
    "query_time:",
    "deadlock",
    "timed out",
    "timeout",
    "retrying",
    "throttl",
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
    key: str  # the text that is mined into a template: the record's message


def find_events(
    lines: Sequence[str],
    text: str | None = None,
    *,
    max_events: int = _MAX_EVENTS,
    keywords: Sequence[str] = ERROR_KEYWORDS,
) -> tuple[list[_Event], int]:
    """Error events in order, and how many candidate lines were left unread after
    `max_events`; a stack trace is one event keyed by its telling line."""
    text = "\n".join(lines) if text is None else text
    starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    lowered = text.lower()
    if len(lowered) != len(text):  # lowercasing moved offsets ("İ"): match case-blind
        lowered = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
    error_at, status_at, end = _candidates(lowered, max_events * 4, keywords)
    unread = sum(lowered.count(k, end) for k in (*keywords, *_STATUS_KEYS)) if end else 0
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
        # Mined is the record's message, so one failure logged in different formats
        # gives one template; the level in the prefix has done its work above.
        key = message_of(clean_line(key))[:MAX_LINE_CHARS]
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


def _candidates(
    lowered: str, limit: int, keywords: Sequence[str]
) -> tuple[list[int], list[int], int]:
    """Error and status keyword offsets (first per line per keyword), and the offset
    where reading stopped because some keyword reached `limit` hits (0: read it all).

    Beyond that offset nothing is kept for any keyword, so the hits stay in order."""
    per_key = {k: _positions(lowered, k, limit) for k in (*keywords, *_STATUS_KEYS)}
    full = [hits[-1] for hits in per_key.values() if len(hits) >= limit]
    end = min(full) + 1 if full else 0

    def keep(keys: Sequence[str]) -> list[int]:
        return [p for k in keys for p in per_key[k] if not end or p < end]

    return keep(keywords), keep(_STATUS_KEYS), end


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
