"""One log record to its message, so a failure's template does not depend on its logger.

The same failure reaches us as plain text (`TS LEVEL msg`), Python logging
(`TS - name - LEVEL - msg`, `LEVEL:name:msg`), syslog (`Mmm dd hh:mm:ss host prog[pid]:`),
logfmt (`level=error msg="…"`) or JSON lines. drain3 would mine the timestamp, level,
logger, host, pid and thread tokens as part of the event, so each format gave the failure
another template and signature. `message_of` peels those prefixes off, or picks the
message field of a structured record, and drops request/trace id annotations, so the
template comes from the words that say what failed.

Only the mining key goes through here: events are still found on the original line (its
level keeps deciding whether it is an error or a warning), and reps see the original
line as evidence. Every pattern is anchored where the prefix left off and bounded, and
nothing raises: what cannot be read as a record comes back as it was, minus id notes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

# The whole level word, so "ConnectionError:" or "Errors seen" are never taken for one.
_LEVEL = (
    r"(?:TRACE|DEBUG|INFO|NOTICE|LOG|WARN(?:ING)?|ERR(?:OR)?|CRIT(?:ICAL)?|FATAL|SEVERE"
    r"|ALERT|EMERG(?:ENCY)?|PANIC)"
)
_TS = (
    r"(?:\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
    r"(?:\s?(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?"
    r"|(?:[A-Z][a-z]{2} )?[A-Z][a-z]{2}\s+\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)?(?: \d{4})?"
    r"|\d{1,2}[-/][A-Z][a-z]{2}[-/]\d{4}[: ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?: [+-]\d{4})?"
    r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
    r"|\d{10}(?:\.\d+)?)"
)
_END = r"(?:\s+|$)"
# (name, pattern) tried in order where the previous part ended; the first allowed wins.
_PARTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pri5424", re.compile(r"<\d{1,3}>1 ")),
    ("pri", re.compile(r"<\d{1,3}>")),
    # "[2026-11-20 14:12:03]", and Rust's "[2026-11-20T14:12:03Z ERROR app::client]".
    ("ts", re.compile(rf"[\[(]{_TS}[^\]\n]{{0,120}}[\])]{_END}")),
    ("ts", re.compile(rf"{_TS}{_END}")),
    ("glog", re.compile(r"[IWEF]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ [\w./-]+:\d+\]" + _END)),
    ("pylevel", re.compile(rf"{_LEVEL}:[\w.$<>-]{{1,120}}:\s*")),
    ("level", re.compile(rf"(?:{_LEVEL}|\[(?i:{_LEVEL})\]|<(?i:{_LEVEL})>):?{_END}")),
    ("syslog", re.compile(r"[\w.-]{1,100} [\w./@-]{1,100}(?P<pid>\[\d+\])?: ")),
    ("rfc5424", re.compile(r"\S{1,255} \S{1,48} \S{1,128} \S{1,32} (?:-|\[[^\]]{0,500}\]) ")),
    ("cri", re.compile(r"(?:stdout|stderr) [FP] ")),
    ("nginx", re.compile(r"\d+#\d+: (?:\*\d+ )?")),
    ("bracket", re.compile(r"\[[^\]\n]{0,80}\]:?" + _END)),
    ("logger", re.compile(r"[\w.$:/<>-]{1,120}\s+-\s+")),
    ("sep", re.compile(r"[-|:]\s+")),
)
_MAX_PARTS = 10
# The miner reads a message's first 1,000 characters; a record is parsed from its first
# 8 KiB (a cut JSON record still gives its message field, see `_JSON_FIELD`). Both keep
# one long line, which may be an event line of a 20 MiB log, cheap.
_MAX_MESSAGE_CHARS = 2000
_MAX_RECORD_CHARS = 8 * 1024
_MAX_LOGFMT_PAIRS = 64
_ONCE = frozenset({"pri", "pri5424", "ts", "syslog", "rfc5424", "cri", "nginx", "logger"})
# After the level, "c.e.Foo - " or "db - " is a logger but "Timeout - " is the message.
_LOGGER_NAME = re.compile(r"[a-z_$]|\S*[.:]")
_LEVEL_PARTS = frozenset({"level", "pylevel", "glog"})
# What may come before a syslog header: nothing but its priority and timestamp.
_SYSLOG_HEAD = frozenset({"pri", "pri5424", "ts", "syslog_ts"})

_ID_KEY = r"(?:x-)?(?:request|req|trace|span|correlation|transaction)[ _.-]?id"
_ID_VALUE = r"[\"']?(?=[^\s\"')\]]{0,200}\d)[\w.:/+=-]{1,200}[\"']?"
# "(request id 8f2a…)", "[trace_id=ab12]", "request_id=7f3a…": context, not the failure.
# (?<!\s): a long run of blanks is tried once, not once per blank.
_ID_NOTE = re.compile(
    rf"(?<!\s)\s*(?:[(\[]\s*{_ID_KEY}\s*[=:]?\s*{_ID_VALUE}\s*[)\]]"
    rf"|\b{_ID_KEY}\s*[=:]?\s*{_ID_VALUE})",
    re.IGNORECASE,
)

_MESSAGE_KEYS = ("msg", "message", "event", "log", "@message")
_ERROR_KEYS = ("error", "err", "error.message", "exception", "exc_info")
# Fields that say when, where and how loud, never what failed: left out when a record
# without a message key is rendered as its fields.
_CONTEXT_KEYS = frozenset(
    {"ts", "time", "timestamp", "@timestamp", "date", "datetime", "t"}
    | {"level", "severity", "lvl", "levelname", "loglevel", "log.level", "level_name"}
    | {"logger", "logger_name", "name", "module", "caller", "source", "file", "line", "lineno"}
    | {"pid", "process", "thread", "thread_name", "threadname", "tid", "goroutine"}
    | {"host", "hostname", "service", "app", "stream", "@version"}
    | {"request_id", "requestid", "req_id", "trace_id", "traceid", "span_id", "spanid"}
    | {"correlation_id", "x-request-id", "x_request_id"}
)
_LOGFMT_PAIR = re.compile(r"([A-Za-z_@][\w.@-]{0,100})=(\"(?:[^\"\\]|\\.)*\"|[^\s\"]*)")
_BLANKS = re.compile(r"\s+")
_JSON_FIELD = re.compile(
    r"\"(msg|message|event|error|err)\"\s*:\s*\"((?:[^\"\\]|\\.){0,4000})(?:\"|$)"
)
_TRACEBACK = "Traceback (most recent call last)"


def message_of(line: str) -> str:
    """The part of one log line that says what happened, for templates and signatures."""
    rest = strip_prefix(line).strip()
    record = rest[:_MAX_RECORD_CHARS]
    if record[:1] in ("{", '"'):
        rest = _json_message(record)
    elif _LOGFMT_PAIR.match(record):
        rest = _logfmt_message(record) or rest
    rest = rest[:_MAX_MESSAGE_CHARS]
    message = " ".join(_ID_NOTE.sub("", rest).split())
    return message or " ".join(line[:_MAX_MESSAGE_CHARS].split())


def strip_prefix(line: str) -> str:
    """`line` without its leading timestamp, level, logger, host, pid and thread parts."""
    pos, seen = 0, set[str]()
    for _ in range(_MAX_PARTS):
        match = _next_part(line, pos, seen)
        if match is None:
            break
        name, end = match
        seen.add(name)
        pos = end
    return line[pos:]


def _next_part(line: str, pos: int, seen: set[str]) -> tuple[str, int] | None:
    for name, pattern in _PARTS:
        if not _allowed(name, pos, seen):
            continue
        match = pattern.match(line, pos)
        if match is None or match.end() == pos:
            continue
        if _mistaken(name, match, seen):
            continue
        if name == "ts" and line[pos : pos + 1].isalpha():
            seen.add("syslog_ts")  # "Nov 20 14:12:03": a host and program may follow
        return name, match.end()
    return None


def _mistaken(name: str, match: re.Match[str], seen: set[str]) -> bool:
    """A match that is the message's first words, not a part of the prefix."""
    if name == "syslog":
        # "2026-… db error: refused" has no host and program, "Nov 20 … web-1 app:" has.
        return not match["pid"] and "syslog_ts" not in seen
    if name == "logger" and "level" in seen and "bracket" not in seen:
        return not _LOGGER_NAME.match(match[0])
    return False


def _allowed(name: str, pos: int, seen: set[str]) -> bool:
    if name in _ONCE and name in seen:
        return False
    if name in ("pri", "pri5424"):
        return pos == 0
    if name in _LEVEL_PARTS:
        return not seen & _LEVEL_PARTS
    if name in ("syslog", "cri"):
        return "ts" in seen and seen <= _SYSLOG_HEAD
    if name == "rfc5424":
        return "pri5424" in seen and "ts" in seen and seen <= _SYSLOG_HEAD
    if name in ("bracket", "logger", "sep", "nginx"):
        return pos > 0
    return True


def _json_message(text: str) -> str:
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        # A line cut short or not JSON at all: a message field may still be readable.
        fields = {key: _unescape(value) for key, value in _JSON_FIELD.findall(text)}
        return _compose(fields) or text
    if isinstance(record, str):
        return strip_prefix(_one_line(record))
    if not isinstance(record, dict):
        return text
    try:
        return _compose(record) or _render_fields(record) or text
    except RecursionError:  # nested as deep as the parser allowed, one frame too deep here
        return text


def _logfmt_message(text: str) -> str:
    fields: dict[str, str] = {}
    pos = pairs = 0
    while pos < len(text) and pairs < _MAX_LOGFMT_PAIRS:
        pairs += 1
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None:
            return ""  # words between the pairs: a message, not a record
        value = match[2]
        fields[match[1]] = _unescape(value[1:-1]) if value.startswith('"') else value
        gap = _BLANKS.match(text, match.end())
        if gap is None and match.end() < len(text):
            return ""
        pos = gap.end() if gap else match.end()
    if pos < len(text):
        return ""  # a line of a hundred pairs is data, not a log record
    if not fields.keys() & {*_MESSAGE_KEYS, *_ERROR_KEYS, *_CONTEXT_KEYS}:
        return ""
    return _compose(fields) or _render_fields(fields)


def _compose(record: Mapping[str, object]) -> str:
    """The record's message, and its error after a colon when it has both."""
    lowered = {str(k).lower(): v for k, v in record.items()}
    message = _first_text(lowered, _MESSAGE_KEYS, strip_prefix)
    error = _first_text(lowered, _ERROR_KEYS, str)
    if message and error and error not in message:
        return f"{message}: {error}"
    return message or error


def _first_text(
    record: Mapping[str, object], keys: tuple[str, ...], tidy: Callable[[str], str]
) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, dict):
            # An error object ({"type": …, "message": …}); ECS's "log" object has no message.
            value = value.get("message") or value.get("msg")
        if isinstance(value, str) and value.strip():
            return tidy(_one_line(value)).strip()
    return ""


def _render_fields(record: Mapping[str, object]) -> str:
    """A record without a message as its telling fields, sorted so key order is moot."""
    parts = []
    for key in sorted(str(k) for k in record):
        if key.lower() in _CONTEXT_KEYS:
            continue
        value = record[key]
        if not isinstance(value, str):
            value = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        parts.append(f"{key}={_one_line(value)}")
    return " ".join(parts)


def _one_line(text: str) -> str:
    """A multi-line value's telling line: a traceback's last, anything else's first."""
    if "\n" not in text:
        return text
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return ""
    return lines[-1] if _TRACEBACK in text else lines[0]


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\\\", "\\")
