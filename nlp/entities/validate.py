"""Checks a regex cannot express cleanly, run on a match before it becomes an entity.

IPv6 validity, "is this a host name or a file name", "is this a date or a version",
"is this dotless word after 'server' a machine or an English compound": each is a few
lines of Python over the matched text, and far easier to read here than as
look-arounds inside the shared alternation.
"""

from __future__ import annotations

import ipaddress
import re

from nlp.entities.rules import BARE_HOST
from nlp.entities.words import FILE_EXTS, HYPHEN_PREFIXES, HYPHEN_WORDS, TLDS

CHECKED = frozenset({"IP", "VERSION", "HOSTNAME", BARE_HOST})
_PROTOCOLS = ("HTTP/", "HTTPS/", "SPDY/", "RTSP/", "SIP/", "SMTP/")
_VERSION_WORD = re.compile(r"^[vV]\d+$")
_DATE_LIKE = re.compile(r"^(?:(?:19|20)\d\d\.\d{1,2}\.\d{1,2}|\d{1,2}\.\d{1,2}\.(?:19|20)\d\d)\b")


def valid(label: str, value: str) -> bool:
    """Whether a match of an internal `label` really is that entity."""
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
        return looks_like_host(value)
    if label == BARE_HOST:
        return looks_like_bare_host(value)
    return True


def looks_like_host(value: str) -> bool:
    """A known TLD, or ≥ 3 labels with digits/hyphens (db-1.prod.dc2), never a file name."""
    labels = value.rstrip(".").split(".")
    tld = labels[-1].lower()
    if tld in FILE_EXTS or len(labels) < 2:
        return False
    if tld in TLDS and not labels[-1].isupper():
        return not (
            len(labels) == 2
            and labels[0][:1].isupper()
            and labels[0][1:].islower()
            and tld in ("py", "rs", "sh", "pl", "md")
        )
    return len(labels) >= 3 and any(ch.isdigit() or ch == "-" for ch in value) and value.islower()


def looks_like_bare_host(value: str) -> bool:
    """A dotless name after a host word: has a digit (db-main-2, web01), or is a
    hyphenated lowercase name that is no English compound (db-primary, not e-mail)."""
    if len(value) < 3 or not value[:1].isalpha():
        return False
    if any(ch.isdigit() for ch in value):
        return not _VERSION_WORD.match(value)  # "server v2" names a version, not a host
    if "-" not in value or not value.islower():
        return False
    lowered = value.lower()
    parts = lowered.split("-")
    return (
        lowered not in HYPHEN_WORDS
        and parts[0] not in HYPHEN_PREFIXES
        and all(len(p) >= 2 for p in parts)
    )
