"""Typed entities (hosts, IPs, error codes, versions, ...) from support mail and logs.

Why one big regex instead of a spaCy EntityRuler: token-level REGEX patterns in a
ruler cost a full pattern walk per token and were several times slower on support mail
than a single compiled alternation over the raw text. So every label is one named
alternative of ONE compiled pattern, ordered most specific first (a URL before the
hostname inside it, "version 1.2.3.4" before the dotted quad). Where a label needs
context ("HTTP 503", "account id 123456789012") the context is matched too, but the
entity is the inner `v` group only, so `text[start:end] == entity.text` always holds.

A few labels need checks a regex cannot express cleanly (octets ≤ 255 is in the
regex; IPv6 validity, "is this a hostname or a file name", "is this a date or a
version") and are validated after matching. PRODUCT/SERVICE names come from the
operator's phrase list through a spaCy `PhraseMatcher` on a `spacy.blank("en")`
tokenizer (case-insensitive, whole tokens only). Overlaps between regex entities and
phrases are resolved like `spacy.util.filter_spans`: longest first, then earliest.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nlp.types import Entity

RULES_VERSION = "ent-2"

LABELS = (
    "HOSTNAME",
    "IP",
    "URL",
    "EMAIL",
    "HTTP_STATUS",
    "ERROR_CODE",
    "VERSION",
    "K8S_RESOURCE",
    "CLOUD_REGION",
    "ACCOUNT_ID",
    "CVE",
    "EXCEPTION",
    "TIMESTAMP",
    "PRODUCT",
    "SERVICE",
)


class EntitySettingsError(ValueError):
    """An operator-supplied pattern or phrase that cannot be used."""


@dataclass(frozen=True)
class EntitySettings:
    """Operator knobs. `products` entries are "phrase" (PRODUCT) or "SERVICE:phrase"."""

    products: tuple[str, ...] = ()
    account_id_patterns: tuple[str, ...] = ()


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DIRS = "north|south|east|west|central|northeast|southeast|northwest|southwest"
_AZURE = (
    "eastus|eastus2|eastus3|westus|westus2|westus3|centralus|northcentralus|southcentralus|"
    "westcentralus|northeurope|westeurope|uksouth|ukwest|francecentral|francesouth|"
    "germanywestcentral|germanynorth|swedencentral|switzerlandnorth|switzerlandwest|"
    "norwayeast|norwaywest|polandcentral|italynorth|spaincentral|eastasia|southeastasia|"
    "japaneast|japanwest|koreacentral|koreasouth|australiaeast|australiasoutheast|"
    "australiacentral|centralindia|southindia|westindia|brazilsouth|canadacentral|"
    "canadaeast|uaenorth|uaecentral|qatarcentral|southafricanorth|israelcentral|mexicocentral"
)
_K8S_KINDS = (
    "pods?|po|deployments?(?:\\.apps)?|deploy|statefulsets?(?:\\.apps)?|sts|"
    "daemonsets?(?:\\.apps)?|ds|replicasets?(?:\\.apps)?|rs|services?|svc|namespaces?|ns|"
    "jobs?(?:\\.batch)?|cronjobs?(?:\\.batch)?|configmaps?|cm|secrets?|ingress(?:es)?|ing|"
    "nodes?|no|persistentvolumeclaims?|pvc|persistentvolumes?|pv|"
    "horizontalpodautoscalers?|hpa|serviceaccounts?|sa"
)
_ERRNO = (
    "ECONNRESET|ECONNREFUSED|ECONNABORTED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EADDRINUSE|"
    "EADDRNOTAVAIL|EACCES|EPERM|ENOENT|EPIPE|EAGAIN|EMFILE|ENFILE|ENOSPC|ENOMEM|EEXIST|"
    "EISDIR|ENOTDIR|EROFS|EBUSY|EINVAL|EIO|ENOTFOUND|EAI_AGAIN|EPROTO|ESHUTDOWN|EDQUOT"
)
_K8S_REASONS = (
    "OOMKilled|CrashLoopBackOff|ImagePullBackOff|ErrImagePull|CreateContainerConfigError|"
    "CreateContainerError|InvalidImageName|ContainerCannotRun|DeadlineExceeded|"
    "FailedScheduling|FailedMount|NodeNotReady|Evicted(?=\\s|:|$)"
)
_GRPC = (
    "DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|PERMISSION_DENIED|UNAUTHENTICATED|"
    "FAILED_PRECONDITION|INVALID_ARGUMENT|ALREADY_EXISTS|DATA_LOSS|OUT_OF_RANGE"
)
_REASONS = (
    "Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Request Timeout|"
    "Conflict|Gone|Payload Too Large|Unprocessable Entity|Too Many Requests|"
    "Internal Server Error|Not Implemented|Bad Gateway|Service Unavailable|Gateway Timeout"
)

# Most specific first: at one start position the first alternative that matches wins.
# `v` marks the entity inside a context match; without it the whole match is the entity.
_RULES: tuple[tuple[str, str], ...] = (
    ("URL", r"\b(?:https?|ftp|wss?)://[^\s<>\"'`]{0,2047}[^\s<>\"'`.,;:!?)\]}]"),
    (
        "URL",
        r"\bwww\.[a-zA-Z0-9-]{1,63}(?:\.[a-zA-Z0-9-]{1,63}){1,8}"
        r"(?:/[^\s<>\"'`]{0,2047}[^\s<>\"'`.,;:!?)\]}])?",
    ),
    (
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b",
    ),
    (
        "TIMESTAMP",
        r"\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
        r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?"
        r"(?:\s?Z|\s?[+-](?:[01]\d):?[0-5]\d|\s?UTC)?)?(?![\d:])",
    ),
    (
        "TIMESTAMP",
        rf"\b(?:{_DAY},?\s+)?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?"
        r"(?:\s+(?:[+-]\d{4}|GMT|UTC|[A-Z]{3,4}\b))?",
    ),
    (
        "TIMESTAMP",
        rf"\b(?:{_DAY}\s+)?{_MONTH}\s+\d{{1,2}}\s+\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d+)?(?:\s+\d{{4}}\b)?",
    ),
    ("CVE", r"\b(?i:CVE)-\d{4}-\d{4,7}\b"),
    ("K8S_RESOURCE", rf"\b(?:{_K8S_KINDS})/[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?(?![\w/])"),
    (
        "ACCOUNT_ID",
        r"\b(?i:aws[ _-]?account(?:[ _-]?(?:id|number))?|account[ _-]?(?:id|number|no\.?|#))"
        r"\s{0,3}[:=#]?\s{0,3}(?P<v>\d{12})\b",
    ),
    ("ACCOUNT_ID", r"\barn:aws[\w-]{0,16}:[\w-]{0,64}:[\w-]{0,32}:(?P<v>\d{12}):"),
    ("ACCOUNT_ID", rf"\b(?i:tenant[ _-]?id)\s{{0,3}}[:=]?\s{{0,3}}\"?(?P<v>{_UUID})\b"),
    ("ACCOUNT_ID", r"\bacct_[A-Za-z0-9]{6,64}\b"),
    ("ERROR_CODE", r"\b(?i:exit(?:ed)?\s+(?:with\s+)?(?:code|status))\s{0,3}[:=]?\s{0,3}\d{1,3}\b"),
    ("ERROR_CODE", r"\bSQLSTATE\s{0,3}[:=]?\s{0,3}\[?[0-9A-Z]{5}\b\]?"),
    ("ERROR_CODE", r"\b(?:ORA|PLS|TNS|IMP|EXP|RMAN)-\d{5}\b"),
    ("ERROR_CODE", r"\b(?:ERR|ERROR|E)_[A-Z0-9]{1,32}(?:_[A-Z0-9]{1,32}){0,8}\b"),
    (
        "ERROR_CODE",
        r"\b[A-Z][A-Z0-9]{0,31}(?:_[A-Z0-9]{1,32}){0,8}_(?:ERROR|FAILED|FAILURE|EXPIRED|DENIED)\b",
    ),
    ("ERROR_CODE", rf"\b(?:{_ERRNO}|{_K8S_REASONS}|{_GRPC})\b"),
    ("ERROR_CODE", r"\bSIG(?:KILL|SEGV|TERM|ABRT|BUS|ILL|FPE|PIPE)\b"),
    ("HTTP_STATUS", r"\bHTTP/\d(?:\.\d)?\"?\s{1,3}(?P<v>[1-5]\d\d)\b"),
    (
        "HTTP_STATUS",
        r"\b(?i:https?(?:[ _-]?(?:status|code|error|response))?|status(?:[ _-]?code)?|"
        r"response(?:[ _-]?code)?|returned|returns|returning|responded(?:\s+with)?|"
        r"got\s+an?|received\s+an?|throws|error\s+code)"
        r"\s{0,3}[:=]?\s{0,3}\"?(?P<v>[1-5]\d\d)(?![\d:/]|\.\d)\b",
    ),
    ("HTTP_STATUS", rf"\b(?P<v>[1-5]\d\d)\s{{1,3}}(?i:{_REASONS})\b"),
    (
        "EXCEPTION",
        r"\b(?:[A-Za-z_][A-Za-z0-9_]{0,63}\.){0,10}[A-Z][A-Za-z0-9_]{1,80}?(?:Exception|Error)\b",
    ),
    ("EXCEPTION", r"\b(?:KeyboardInterrupt|SystemExit|StopIteration|GeneratorExit)\b"),
    (
        "VERSION",
        r"(?<![\w.])(?i:version|ver\.?|release|v)\s{0,3}:?\s{0,3}\d{1,6}(?:\.\d{1,6}){1,3}"
        r"(?:-[0-9A-Za-z]{1,20}(?:\.[0-9A-Za-z]{1,20}){0,4})?(?!\.?\d)",
    ),
    (
        "VERSION",
        r"\b[A-Za-z][A-Za-z0-9_-]{1,30}/v?\d{1,6}(?:\.\d{1,6}){1,3}(?:-[0-9A-Za-z]{1,20})?(?!\.?\d)",
    ),
    ("CLOUD_REGION", rf"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-|iso-)?(?:{_DIRS})-\d\b"),
    (
        "CLOUD_REGION",
        rf"\b(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-(?:{_DIRS})\d{{1,2}}"
        r"(?:-[a-f])?\b",
    ),
    ("CLOUD_REGION", rf"\b(?:{_AZURE})\b"),
    ("IP", rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"),
    (
        "IP",
        r"(?<![\w:.])(?=[0-9A-Fa-f:]{0,45}[0-9A-Fa-f])"
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])",
    ),
    (
        "VERSION",
        r"(?<![\w.-])\d{1,4}\.\d{1,4}\.\d{1,6}(?:-[0-9A-Za-z]{1,20}(?:\.[0-9A-Za-z]{1,20}){0,4})?"
        r"(?![\w]|\.\d)",
    ),
    (
        "HOSTNAME",
        r"(?<![\w.@/-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,16}"
        r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?![\w-]|\.\w)",
    ),
)


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


_TLDS = _wordset(
    """com net org io dev app cloud ai co info biz me tech xyz site online edu gov mil int
    eu uk de fr nl be ch at es it se no dk fi pl cz pt ie us ca au nz jp cn kr in br mx
    ru ua tr za sg hk tw il ae ar cl cy gr hu ro sk si lt lv ee lu is bg hr rs by kz vn
    th my id ph pk ng ke eg ma tn su tv fm gg je im li mc pro name mobi asia travel
    local internal lan corp intra intranet home localdomain svc cluster test example
    invalid localhost arpa"""
)
# Common file extensions that also look like the last label of a host name.
_FILE_EXTS = _wordset(
    """log txt out err gz zip tar tgz bz2 xz json yaml yml toml ini cfg conf csv tsv xml
    html htm py js ts go rs rb java class jar war sh bash md rst pdf png jpg jpeg gif svg
    exe dll so dylib bin dat db sqlite sql pem crt key csr pid sock lock bak tmp swp
    properties env"""
)
_DATE_LIKE = re.compile(r"^(?:(?:19|20)\d\d\.\d{1,2}\.\d{1,2}|\d{1,2}\.\d{1,2}\.(?:19|20)\d\d)\b")


_GUARD = (
    r"(?=[A-Z0-9:]|[a-z][\w-]{0,63}(?:\d|[@/.:=_-]\w)|(?:v|ver|version|release|https?|status|response|"
    r"returned|returns|returning|responded|got|received|throws|error|exit|exited|account|aws|"
    r"tenant|east|west|north|south|central|uk|france|germany|sweden|switzerland|norway|poland|"
    r"italy|spain|japan|korea|australia|india|brazil|canada|uae|qatar|israel|mexico))"
)


def _compile(rules: Iterable[tuple[str, str]]) -> tuple[re.Pattern[str], dict[str, str]]:
    parts: list[str] = []
    labels: dict[str, str] = {}
    for i, (label, pattern) in enumerate(rules):
        name = f"r{i}"
        labels[name] = label
        parts.append(f"(?P<{name}>{pattern.replace('(?P<v>', f'(?P<{name}v>')})")
    # Entities start at a word start, and a plain lowercase word can only start one if
    # it is a context word: checking that first skips most positions of prose cheaply.
    return re.compile(r"(?<!\w)" + _GUARD + "(?:" + "|".join(parts) + ")"), labels


_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_]\w*>")


def _account_rules(patterns: tuple[str, ...]) -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise EntitySettingsError(
                f"account id pattern {pattern!r} is not a regex: {exc}"
            ) from exc
        if re.compile(pattern).match(""):
            raise EntitySettingsError(f"account id pattern {pattern!r} matches empty text")
        # Operator patterns join the shared alternation; their own names would collide.
        rules.append(("ACCOUNT_ID", _NAMED_GROUP.sub("(?:", pattern)))
    return rules


def _phrase_entries(products: tuple[str, ...]) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    for item in products:
        label, sep, phrase = item.partition(":")
        if sep and label.strip().upper() in ("PRODUCT", "SERVICE"):
            entries.append((label.strip().upper(), phrase.strip()))
        else:
            entries.append(("PRODUCT", item.strip()))
    bad = [item for (_, phrase), item in zip(entries, products, strict=True) if not phrase]
    if bad:
        raise EntitySettingsError(f"empty product/service phrase in {bad!r}")
    return entries


class EntityExtractor:
    """Compiled rules for one `EntitySettings`; build once, call many times."""

    def __init__(self, settings: EntitySettings) -> None:
        account = _account_rules(settings.account_id_patterns)
        # Operator account patterns go first: they are the most specific knowledge.
        self._regex, self._labels = _compile([*account, *_RULES])
        self._inner = {
            name: name + "v" for name in self._labels if name + "v" in self._regex.groupindex
        }
        self._phrases = _phrase_entries(settings.products)
        self._nlp: Any = None
        self._matcher: Any = None
        if self._phrases:
            self._build_matcher()

    def _build_matcher(self) -> None:
        import spacy
        from spacy.matcher import PhraseMatcher

        self._nlp = spacy.blank("en")
        self._matcher = PhraseMatcher(self._nlp.vocab, attr="LOWER")
        for label, phrase in self._phrases:
            self._matcher.add(label, [self._nlp.make_doc(phrase)])

    def extract(self, text: str, source: str = "body") -> list[Entity]:
        spans = list(self._regex_spans(text))
        if self._matcher is not None and text:
            # Regex matches never overlap each other; only phrases can overlap them.
            spans = _resolve([*spans, *self._phrase_spans(text)])
        return [Entity(label, text[s:e], s, e, source) for s, e, label in spans]

    def _regex_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        for match in self._regex.finditer(text):
            name = match.lastgroup
            if name is None:
                continue
            label = self._labels[name]
            inner = self._inner.get(name)
            start, end = match.span(inner) if inner else match.span(name)
            if label in _CHECKED and not _valid(label, text[start:end]):
                continue
            yield start, end, label

    def _phrase_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        doc = self._nlp.make_doc(text)
        for match_id, start, end in self._matcher(doc):
            span = doc[start:end]
            yield span.start_char, span.end_char, self._nlp.vocab.strings[match_id]


_CHECKED = frozenset({"IP", "VERSION", "HOSTNAME"})
_PROTOCOLS = ("HTTP/", "HTTPS/", "SPDY/", "RTSP/", "SIP/", "SMTP/")


def _valid(label: str, value: str) -> bool:
    if label == "IP" and ":" in value:
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return False
        return True
    if label == "VERSION" and value[:1].isdigit():
        return not _DATE_LIKE.match(value)
    if label == "VERSION" and value.upper().startswith(_PROTOCOLS):
        return False  # "GET / HTTP/1.1" names the protocol, not the customer's software
    if label == "HOSTNAME":
        return _looks_like_host(value)
    return True


def _looks_like_host(value: str) -> bool:
    """A known TLD, or ≥ 3 labels with digits/hyphens (db-1.prod.dc2), never a file name."""
    labels = value.rstrip(".").split(".")
    tld = labels[-1].lower()
    if tld in _FILE_EXTS or len(labels) < 2:
        return False
    if tld in _TLDS and not labels[-1].isupper():
        return not (
            len(labels) == 2
            and labels[0][:1].isupper()
            and labels[0][1:].islower()
            and tld in ("py", "rs", "sh", "pl", "md")
        )
    return len(labels) >= 3 and any(ch.isdigit() or ch == "-" for ch in value) and value.islower()


def _resolve(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Longest span wins, then the earliest; the same rule as spacy.util.filter_spans."""
    if len(spans) < 2:
        return spans
    taken: list[tuple[int, int, str]] = []
    used: set[int] = set()
    for start, end, label in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if any(i in used for i in range(start, end)):
            continue
        used.update(range(start, end))
        taken.append((start, end, label))
    return sorted(taken)


@lru_cache(maxsize=16)
def get_extractor(settings: EntitySettings) -> EntityExtractor:
    return EntityExtractor(settings)


_DEFAULT = EntitySettings()


def extract_entities(
    text: str, *, source: str = "body", settings: EntitySettings | None = None
) -> list[Entity]:
    """All entities in `text`, in order; offsets index into `text` itself."""
    return get_extractor(settings or _DEFAULT).extract(text, source)


_CASELESS = frozenset(
    {"HOSTNAME", "EMAIL", "CLOUD_REGION", "PRODUCT", "SERVICE", "CVE", "URL", "K8S_RESOURCE"}
)


def normalise(entity: Entity) -> str:
    """The comparable form of an entity's text (used to dedupe and to fill drafts)."""
    text = entity.text.strip().rstrip(".")
    if entity.label == "IP":
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text
    if entity.label == "URL":
        scheme, sep, rest = text.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}{sep}{host.lower()}{slash}{path}" if sep else text.lower()
    if entity.label in _CASELESS:
        return text.lower()
    return " ".join(text.split())


def dedupe(entities: Iterable[Entity]) -> list[Entity]:
    """First occurrence of each (source, label, normalised text), in input order."""
    seen: set[tuple[str, str, str]] = set()
    out: list[Entity] = []
    for entity in entities:
        key = (entity.source, entity.label, normalise(entity))
        if key not in seen:
            seen.add(key)
            out.append(entity)
    return out
