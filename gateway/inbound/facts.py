"""What ingest reads from a message's header before storing it: its key and a summary.

One quick scan of the header block (no MIME parse) gives the dedupe key (the
Message-ID, or the SHA-256 of the raw bytes when there is none) and the few fields a
queue lists before the full parse has run. Split from `gateway.inbound.ingest`, which
stores what is read here.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from gateway import headers as h

log = logging.getLogger(__name__)

# (dedupe key, sha256 hex, Message-ID or None, header summary) of one raw message.
Facts = tuple[str, str, str | None, dict[str, Any]]

EMPTY_SUMMARY: dict[str, Any] = {
    "from_addr": None,
    "from_name": None,
    "to_addrs": [],
    "subject": None,
    "in_reply_to": None,
    "references": [],
}


def header_facts(raw: bytes) -> Facts:
    """Dedupe key, digest, Message-ID and a cheap header summary, from one header scan."""
    digest = hashlib.sha256(raw).hexdigest()
    try:
        fields = h.quick_headers(raw)
    except Exception:  # a header block we cannot read still gets stored
        return f"sha:{digest}", digest, None, dict(EMPTY_SUMMARY)
    mid = h.first_msgid(fields.get("message-id"))
    key = (f"mid:{mid}" if mid else f"sha:{digest}")[:1024]
    return key, digest, mid, _summary(fields)


def _summary(fields: dict[str, str]) -> dict[str, Any]:
    """Header facts for listing before the full parse runs; never raises."""
    try:
        # Addresses come from the raw values; only display names and the subject are
        # decoded (an encoded word never supplies an address).
        name, addr = h.split_address(fields.get("from", ""))
        return {
            "from_addr": addr or None,
            "from_name": name or None,
            "to_addrs": h.split_addresses(fields.get("to", ""))[:100],
            "subject": h.decode_words(fields.get("subject", ""))[:2000] or None,
            "in_reply_to": h.first_msgid(fields.get("in-reply-to")),
            "references": h.message_ids(fields.get("references"))[:100],
        }
    except Exception as exc:
        log.warning("header summary failed: %s", exc)
        return dict(EMPTY_SUMMARY)


def dedupe_key_for(raw: bytes) -> tuple[str, str, str | None]:
    """(dedupe key, sha256 hex, message-id or None) for raw bytes."""
    key, digest, mid, _ = header_facts(raw)
    return key, digest, mid
