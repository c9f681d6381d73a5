"""Log attachments: decode safely, find the lines that matter, give failures a stable id.

Customers attach logs as plain text, `.gz`, `.zip` or `.tar(.gz)`, all untrusted, so
decoding is streaming and capped twice: by total output bytes and by output/input
ratio (a 20 KB gzip that inflates to gigabytes stops at the cap with a note). Archive
members share one byte budget, and all the attachments of one message share another
(`LogSettings.message_budget`): an attachment reached after it ran out is skipped, and
the finding where it ran out says so. Archives inside archives are skipped, encrypted
members refused. Nothing here raises on customer data; every problem becomes
`LogFinding.note`.

Only "interesting" lines are mined (`nlp.logs.events`): errors first; a log with none
gets a second pass for warnings, slow statements and timeouts, and its finding says so
(`level = "warning"`). Each event's message (`nlp.logs.records`: the line without its
timestamp, level, logger and host prefix, or the message field of a JSON or logfmt
record) goes through drain3 into templates and stable signatures (`nlp.logs.templates`),
so one failure has one signature whatever format logged it; evidence keeps the lines
as they were. A log made of nothing but errors is mined up to
2,000 events and the rest only counted, so one attachment cannot keep the runner busy
for long.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace

from nlp.logs.archive import LogSettings, _decode, _human, _unpack, gunzip, is_log_attachment
from nlp.logs.events import (
    _MAX_EVENTS,
    ERROR_KEYWORDS,
    MAX_LINE_CHARS,
    WARNING_KEYWORDS,
    _Event,
    find_events,
)
from nlp.logs.templates import make_template_miner, normalise_template, signature
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

# log-4: templates and signatures come from the record's message, not the whole line.
RULES_VERSION = "log-4"

_MAX_EVIDENCE_BLOCK = 8
_MAX_TEMPLATES = 20


def analyse_logs(
    attachments: Sequence[Attachment], settings: LogSettings | None = None
) -> list[LogFinding]:
    """One finding per log (per member for zip archives); never raises on bad input.

    `attachments` are one message's: they share its decompression budget.
    """
    settings = settings or LogSettings()
    findings: list[LogFinding] = []
    budget = settings.message_budget
    for attachment in attachments:
        if not is_log_attachment(attachment):
            continue
        if budget <= 0:
            note = f"not read: {_budget_note(settings)} by the attachments before it"
            findings.append(_empty(attachment.name, note))
            continue
        try:
            found, used = _analyse_attachment(attachment, settings, budget)
            findings.extend(found)
            budget -= used
        except Exception as exc:  # a last guard: customer data must not break analysis
            findings.append(_empty(attachment.name, f"log analysis failed: {exc!r}"[:300]))
            budget -= len(attachment.data)
    return findings


def _budget_note(settings: LogSettings) -> str:
    return f"the message's log budget of {_human(settings.message_budget)} was used up"


def evidence_text(finding: LogFinding) -> str:
    """The text entity offsets of a log finding refer to: evidence lines joined by "\\n"."""
    return "\n".join(line.text for line in finding.evidence)


def _analyse_attachment(
    attachment: Attachment, settings: LogSettings, budget: int
) -> tuple[list[LogFinding], int]:
    """The findings of one attachment, and the bytes of text it took from `budget`."""
    capped = budget <= settings.max_log_bytes
    unpack = replace(settings, max_log_bytes=budget) if capped else settings
    texts, notes = _unpack(attachment, unpack)
    used = sum(t.cost for t in texts)
    if capped and used >= budget and texts:
        texts[-1].notes.append(f"{_budget_note(settings)} here")
    findings = [_analyse_text(t.name, _decode(t), t.notes, settings) for t in texts]
    if notes:
        findings.append(_empty(attachment.name, "; ".join(notes)))
    return findings, used


def _analyse_text(name: str, text: str, notes: list[str], settings: LogSettings) -> LogFinding:
    if text.endswith("\n"):
        text = text[:-1]
    lines = text.split("\n") if text else []
    level = "error"
    events, unread = find_events(lines, text, max_events=_MAX_EVENTS, keywords=ERROR_KEYWORDS)
    if not events:
        level = "warning"
        events, unread = find_events(lines, text, max_events=_MAX_EVENTS, keywords=WARNING_KEYWORDS)
    if unread:
        # Every error line through drain would make a log of only errors cost seconds.
        notes.append(
            f"templates mined from the first {_MAX_EVENTS:,} error events; "
            f"about {unread:,} more candidate lines counted, not mined"
        )
    if not events:
        return LogFinding(name, len(lines), 0, "", "", note="; ".join(notes))
    counted = sum(len(e.block) for e in events) + unread
    miner = make_template_miner()
    clusters = [miner.add_log_message(event.key)["cluster_id"] for event in events]
    templates = {c.cluster_id: normalise_template(c.get_template()) for c in miner.drain.clusters}
    ranked = _rank(clusters)
    top = ranked[0][0]
    return LogFinding(
        attachment=name,
        total_lines=len(lines),
        error_lines=counted if level == "error" else 0,
        warning_lines=counted if level == "warning" else 0,
        level=level,
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
            yield EvidenceLine(index + 1, clean_line(lines[index])[:MAX_LINE_CHARS])


def _empty(name: str, note: str) -> LogFinding:
    return LogFinding(
        attachment=name, total_lines=0, error_lines=0, signature="", template="", note=note
    )
