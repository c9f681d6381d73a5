"""Plain, frozen value types that cross the boundary between `nlp` and the rest.

`nlp` is a leaf package: the gateway builds a `ParsedMessage` from raw bytes and
hands it in; every analysis step hands back frozen dataclasses (never a spaCy `Doc`),
so results can be stored as JSON, compared in tests and shown to a rep as evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Attachment:
    """One decoded MIME attachment. `data` is capped; `truncated` says if it was cut."""

    name: str
    content_type: str
    size: int
    data: bytes = field(repr=False)
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What the analysis needs to know about one email, already decoded."""

    message_id: str | None
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str
    html: str = ""
    attachments: tuple[Attachment, ...] = ()
    # Raw header pairs in order, decoded to str; screening reads them.
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "text/plain"
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]


@dataclass(frozen=True, slots=True)
class Entity:
    """A typed span. `source` is "body" or the attachment's file name."""

    label: str
    text: str
    start: int
    end: int
    source: str = "body"


@dataclass(frozen=True, slots=True)
class EvidenceLine:
    line_no: int
    text: str


@dataclass(frozen=True, slots=True)
class LogFinding:
    """What one log attachment contributed: its failure signatures and the lines."""

    attachment: str
    total_lines: int
    error_lines: int
    # Stable id of the dominant failure template, equal across tickets for the same failure.
    signature: str
    template: str
    evidence: tuple[EvidenceLine, ...] = ()
    # Other templates seen among the error lines: (signature, template, count).
    templates: tuple[tuple[str, str, int], ...] = ()
    note: str = ""
    # "error", or "warning" when the log had no error and the finding comes from its
    # warnings, slow statements or timeouts (then `warning_lines` counts them).
    level: str = "error"
    warning_lines: int = 0


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything the machine concluded about one message, with its evidence."""

    model_version: str
    intent: str
    confidence: float
    scores: dict[str, float]
    abstained: bool
    entities: tuple[Entity, ...]
    reply_text: str
    log_findings: tuple[LogFinding, ...] = ()
    language: str = "en"
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A knowledge-base article ranked for a ticket, with why it matched."""

    article_id: str
    title: str
    score: float
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DraftProposal:
    """A reply the machine proposes; a human must still review and release it."""

    subject: str
    body: str
    needs_triage: bool
    rationale: str
    suggestions: tuple[Suggestion, ...] = ()
    # Placeholders the template asked for that no extracted value could fill.
    unfilled: tuple[str, ...] = ()
    article_id: str | None = None
    language: str = "en"
    # The co-pilot brief: asks, facts, log finding, passages, missing facts, risk flags
    # and why the body was (or was not) written. Plain JSON-able values.
    brief: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
