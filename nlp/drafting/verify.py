"""Hold a model-written draft to what the customer, the thread and our docs actually say.

A language model writes fluent replies and, now and then, a plausible IP address, an
account id, a price or a date that nobody mentioned. A rep skimming a fluent draft
misses those, so every *value* in the draft must occur in a source: hostnames, IPs,
URLs, e-mail addresses, ids (acct-…, org-…, UUIDs, ticket refs), versions, dates and
times, prices and every number — except the markers of a numbered list.

Why it is shaped so:
- Values are found by an ordered list of patterns over the draft, most specific first
  (a URL before the hostname inside it, a date before its numbers); each match is
  masked so a later, looser pattern cannot re-read part of it.
- A value counts as found when its canonical form (lower case, no spaces, "v" dropped
  from versions, month-name dates as day-month) equals that of a value in a source, or
  when its text occurs in a source *at token boundaries*: "10.0.0.9" is not found in
  "10.0.0.99", nor "acct-12" in "acct-123", nor "1" in "1,000".
- Pure and deterministic: no I/O, so the gateway can call it on every model answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_MONTHS = {
    1: "january enero januar janvier janeiro jan ene janv",
    2: "february febrero februar février fevereiro feb febr févr fev",
    3: "march marzo märz mars março mar mär",
    4: "april abril avril apr abr avr",
    5: "may mayo mai maio",
    6: "june junio juni juin junho jun",
    7: "july julio juli juillet julho jul juil",
    8: "august agosto août aug ago",
    9: "september septiembre septembre setembro sep sept",
    10: "october octubre oktober octobre outubro oct okt",
    11: "november noviembre novembre novembro nov",
    12: "december diciembre dezember décembre dezembro dec dic dez déc",
}
_MONTH_OF = {name: num for num, names in _MONTHS.items() for name in names.split()}
_MONTH_ALT = "|".join(sorted(map(re.escape, _MONTH_OF), key=len, reverse=True))
_MONTH = rf"(?:{_MONTH_ALT})\.?"
_MONTH_NAME = re.compile(rf"(?<!\w)(?:{_MONTH_ALT})(?!\w)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_UNIT = (
    r"(?:ms|msec|s|secs?|seconds?|min|mins|minutes?|h|hrs?|hours?|days?|weeks?|months?|"
    r"years?|[kmgtp]i?b|bytes?|rps|rpm|qps|req/s|cores?|vcpus?|[kmg]hz|[kmg]bps|"
    r"segundos?|minutos?|horas?|d[ií]as?|semanas?|sekunden|minuten|stunden|tage?|"
    r"secondes?|heures?|jours?|semaines?)(?!\w)|%"
)
_CURRENCY = r"(?:EUR|USD|GBP|CHF|CAD|AUD|JPY|BRL|MXN)"
_SYMBOL = r"[$€£¥]"
_AMOUNT = r"\d+(?:[.,\u00a0\u202f ]\d{3})*(?:[.,]\d{1,2})?"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_LIST_MARKER = re.compile(r"^([ \t]*)\d{1,3}[.)](?=[ \t])", re.MULTILINE)
_ID_PREFIX = r"(?:acct|acc|org|prj|proj|tenant|cust?|ws|team|inv|sub|usr|user|ord)"

_B = r"(?<![\w])"  # start of a token
_E = r"(?!\w)"  # end of a token


@dataclass(frozen=True, slots=True)
class Finding:
    """One value in a text: its kind ("ip", "price", …) and its text as written."""

    kind: str
    value: str


def _valid_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _has_letter_and_digit(text: str) -> bool:
    return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)


def _named(text: str) -> bool:
    return text.split()[0].rstrip(".").lower() in _MONTH_OF


# (kind, pattern, extra check). Order matters: the first kind to claim a span keeps it.
_RULES: tuple[tuple[str, re.Pattern[str], Callable[[str], bool] | None], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE), check)
    for kind, pattern, check in (
        ("url", r"\b(?:https?|ftp)://[^\s<>\"'`]+", None),
        ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", None),
        ("uuid", _B + r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}" + _E, None),
        (
            "datetime",
            _B + r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?" + _E,
            None,
        ),
        (
            "date",
            _B + r"(?:\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}\.\d{1,2}\.\d{4})" + _E,
            None,
        ),
        (
            "date",
            r"(?<![\w.,:/-])\d{1,2}(?:st|nd|rd|th|\.|er|º)?\s+(?:de\s+)?" + _MONTH + r"(?!\w)"
            r"(?:,?\s+(?:de\s+)?\d{4}" + _E + ")?",
            None,
        ),
        # Any word, then a month check: one long alternation here was the slowest rule.
        ("date", _B + r"[^\W\d_]{3,10}\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?" + _E, _named),
        ("time", _B + r"\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?|Z)?" + r"(?![\w:])", None),
        ("ip", r"(?<![\w.])" + rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/\d{{1,2}})?(?!\w|\.\d)", None),
        ("ip", r"(?<![\w:])[0-9a-f:]*:[0-9a-f:]*:[0-9a-f:]*(?![\w:])", _valid_ipv6),
        ("price", rf"{_SYMBOL}\s?{_AMOUNT}{_E}", None),
        ("price", rf"{_B}{_CURRENCY}\s?{_AMOUNT}{_E}", None),
        ("price", rf"{_B}{_AMOUNT}\s?(?:{_SYMBOL}|{_CURRENCY}{_E})", None),
        ("version", _B + r"v\d+(?:\.\d+)*(?:[-+][0-9a-z.]+)?" + _E, None),
        ("version", _B + r"\d+\.\d+\.\d+(?:\.\d+)*(?:-[0-9a-z.]+)?" + _E, None),
        (
            "hostname",
            _B + r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]"
            r"(?![\w-]|\.\w)",
            lambda v: not v.replace(".", "").isdigit(),
        ),
        ("ticket", r"(?<![\w#])#\d+" + _E, None),
        ("id", _B + _ID_PREFIX + r"[-_][a-z0-9][\w-]*" + _E, None),
        ("number", _B + rf"(?:{_NUMBER})\s?(?:{_UNIT})", None),
        ("id", _B + r"(?=[\w-]*\d)[a-z0-9_]+(?:-[a-z0-9_]+)*" + _E, _has_letter_and_digit),
        ("number", _B + rf"(?:{_NUMBER})" + _E, None),
        # Whatever digits the rules above left (inside odd tokens) are numbers too.
        ("number", r"\d+(?:[.,]\d+)*", None),
    )
)


def _mask_list_markers(text: str) -> str:
    """ "1. Do this" at a line start numbers the steps; it is no fact to verify."""
    return _LIST_MARKER.sub(lambda m: m.group(1) + " " * (len(m.group()) - len(m.group(1))), text)


def find_values(text: str) -> tuple[Finding, ...]:
    """Every value in `text`, in reading order, each span claimed by the first rule."""
    work = _mask_list_markers(text)
    found: list[tuple[int, Finding]] = []
    for kind, pattern, check in _RULES:
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(work):
            value = match.group()
            if kind == "url":
                value = value.rstrip(".,;:!?)]}'\"")
            elif kind == "date":
                value = value.rstrip(".")
            if not value or (check is not None and not check(value)):
                continue
            found.append((match.start(), Finding(kind, value)))
            spans.append((match.start(), match.start() + len(value)))
        # Claimed spans are masked with a non-word character: later rules see a boundary.
        pieces, last = [], 0
        for start, end in spans:
            pieces += [work[last:start], "\x00" * (end - start)]
            last = end
        work = "".join([*pieces, work[last:]])
    return tuple(f for _, f in sorted(found, key=lambda pair: pair[0]))


def _space(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def canonical(finding: Finding) -> set[str]:
    """The forms under which a value counts as the same value in another spelling."""
    value = re.sub(r"\s+", "", finding.value.lower())
    forms = {value}
    if finding.kind in {"version", "number"} and value.startswith("v"):
        forms.add(value[1:])
    if finding.kind == "number" and re.fullmatch(r"\d+(?:\.\d+)?", value):
        forms.add("v" + value)
    if finding.kind == "datetime":
        # A timestamp in a log vouches for its date and its clock time on their own.
        date = finding.value[:10]
        clock = re.search(r"\d{1,2}:\d{2}(?::\d{2})?", finding.value[10:])
        forms |= {date, *_date_forms(date)}
        if clock:
            forms |= {clock.group(), clock.group()[:5]}
    if finding.kind == "time":
        clock = re.match(r"\d{1,2}:\d{2}", value)
        if clock:
            forms.add(clock.group())
    if finding.kind == "date":
        forms.update(_date_forms(finding.value))
    return forms


def _date_forms(text: str) -> set[str]:
    """Month-name dates in any desk language as "day-month" and "day-month-year"."""
    low = text.lower()
    iso = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", low)
    if iso:
        year, mon, day = (int(x) for x in iso.groups())
        return {f"date:{day}-{mon}", f"date:{day}-{mon}-{year}"}
    named = _MONTH_NAME.search(low)
    if named is None:
        return set()
    month = _MONTH_OF[named.group()]
    numbers = re.findall(r"\d+", low)
    days = [int(n) for n in numbers if len(n) <= 2]
    years = [int(n) for n in numbers if len(n) == 4]
    if not days:
        return set()
    forms = {f"date:{days[0]}-{month}"}
    if years:
        forms.add(f"date:{days[0]}-{month}-{years[0]}")
    return forms


def _occurs(finding: Finding, sources: Sequence[str]) -> bool:
    """The value's text in a source, not as part of a longer token."""
    text = _space(finding.value)
    body = re.escape(text).replace(r"\ ", r"\s?")
    if finding.kind in {"number", "version"} and text[:1].isdigit():
        body = "v?" + body
    # Addresses may be followed by a port or a path, and a domain may follow an "@".
    if finding.kind in {"ip", "hostname"}:
        before, after = r"(?<!\w)(?<!\w[.\-_])", r"(?!\w)(?![.\-_@]\w)"
    else:
        before, after = r"(?<!\w)(?<!\w[.,\-_@:/])", r"(?!\w)(?![.,\-_@:/]\w)"
    pattern = re.compile(before + body + after, re.IGNORECASE)
    return any(pattern.search(src) for src in sources)


def unsourced(draft: str, sources: Sequence[str]) -> tuple[Finding, ...]:
    """The draft's values that no source holds, each once, in reading order."""
    spaced = [_space(_mask_list_markers(s)) for s in sources if s]
    known: set[str] = set()
    for src in spaced:
        for finding in find_values(src):
            known |= canonical(finding)
    missing: list[Finding] = []
    seen: set[str] = set()
    for finding in find_values(draft):
        key = _space(finding.value)
        if key in seen:
            continue
        seen.add(key)
        if canonical(finding) & known or _occurs(finding, spaced):
            continue
        missing.append(finding)
    return tuple(missing)


def verify(draft: str, sources: Sequence[str]) -> tuple[str, ...]:
    """The values in `draft` that occur in no source; empty when the draft is grounded."""
    return tuple(f.value for f in unsourced(draft, sources))


def reasons(missing: Sequence[Finding]) -> tuple[str, ...]:
    """One line per invented value, e.g. "ip 10.0.0.9 is in no source"."""
    return tuple(f"{f.kind} {f.value} is in no source" for f in missing)


_PLACEHOLDER = re.compile(
    r"\[[^\]\n]{1,40}\](?!\()|<[A-Za-z][A-Za-z _-]{0,30}>|\{\{?[^{}\n]{1,40}\}\}?"
)


def placeholders(draft: str) -> tuple[str, ...]:
    """Blanks a model left to fill ("[Your Name]", "<account id>", "{{ticket}}")."""
    return tuple(dict.fromkeys(m.group() for m in _PLACEHOLDER.finditer(draft)))
