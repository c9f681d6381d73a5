"""Templates and signatures: drain3 with generic masks, and a stable id per failure.

The event lines go through drain3 (in memory, one miner per attachment so results do
not depend on what else the process saw) with generic masks for timestamps, ids, IPs,
hex, paths and numbers. The **signature** of a failure is the first 12 hex of the
SHA-1 of its normalised template: equal for the same failure in different tickets
(other timestamps, hosts, request ids) and independent of drain's per-process cluster
ids.
"""

from __future__ import annotations

import hashlib
import logging
import re

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

_MASKS: tuple[tuple[str, str], ...] = (
    # Values whose token count varies would split one event across drain's
    # length-first tree: "bytes (1.16 KB) sent" beside "bytes sent", "lifetime <1 sec"
    # beside "lifetime 00:01". A parenthesised size joins the word before it and a
    # compact duration is one token; "198 seconds" stays two, as it always is.
    # (?<!\s): a long run of blanks is tried once, not once per blank.
    (r"(?<!\s)\s*\(\s*\d+(?:\.\d+)?\s*[KMGT]i?B\s*\)", "SIZE"),
    # Go prints a duration in the unit its size calls for: "850µs", "250ms", "1m2.5s".
    (
        r"<\d+(?:\.\d+)?\s?(?:ms|msec|secs?|s)\b"
        r"|\b(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|µs|ns)){2,4}\b"
        r"|\b\d+(?:\.\d+)?(?:ms|msec|us|µs|ns|secs?|s|mins?|h|m)\b",
        "NUM",
    ),
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
