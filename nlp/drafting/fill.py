"""Filling an answer's placeholders, and only from values that were really found.

The rule that shapes this module: the machine never invents a fact. A placeholder is
filled only from a value extracted from the customer's own mail, its attachments or the
ticket's earlier mail (an entity with offsets), or from the ticket itself (name,
reference). A line that starts with `? ` is optional and disappears when one of its
values is missing; on any other line a missing value stays visible as `[[name?]]` and
is reported, so the rep sees exactly what to complete and the queue blocks release.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from nlp.drafting.articles import PLACEHOLDER
from nlp.types import Entity

OPTIONAL = "? "
_SUBJECT_TOKEN = re.compile(r"\[#\d+\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?|wg|tr|rv|res)\s*(\[\d+\])?\s*:\s*)+", re.I)
# Where a value came from, best first: what the customer wrote now beats an attachment,
# which beats the ticket's earlier mail.
_SOURCE_RANK = {"body": 0, "forwarded": 1}


def unfilled_marker(name: str) -> str:
    return f"[[{name}?]]"


def ticket_ref(ticket_id: int | None) -> str:
    return f"#{ticket_id}" if ticket_id is not None else ""


def clean_subject(subject: str) -> str:
    """The topic without stacked `Re:`/`Fwd:` prefixes or our `[#123]` token."""
    base = _REPLY_PREFIX.sub("", subject or "").strip()
    return _SUBJECT_TOKEN.sub("", base).strip()


def reply_subject(subject: str, ticket_id: int | None) -> str:
    """`Re: <original> [#id]`, without stacking prefixes or duplicating the token."""
    token = f" [#{ticket_id}]" if ticket_id is not None else ""
    return f"Re: {clean_subject(subject) or '(no subject)'}{token}"


def _rank(entity: Entity) -> tuple[int, int]:
    if entity.source.startswith("thread"):
        return 3, entity.start
    return _SOURCE_RANK.get(entity.source, 2), entity.start


def entity_values(entities: Sequence[Entity]) -> dict[str, str]:
    """Placeholder name → first value, body before attachments before the thread.

    A URL the customer gave names its host too: "the hostname" is never asked of a
    customer who sent https://api.acme.io/v1/orders."""
    values: dict[str, str] = {}
    for ent in sorted(entities, key=_rank):
        values.setdefault(ent.label.lower(), ent.text.strip())
    if "hostname" not in values and "url" in values:
        host = urlsplit(values["url"]).hostname or ""
        if "." in host:
            values["hostname"] = host
    return values


def fill_template(template: str, values: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Fill `{name}` placeholders; drop optional lines that cannot be filled; return
    the text and the names left unfilled on required lines."""
    missing: list[str] = []
    out: list[str] = []
    for line in template.split("\n"):
        if line.startswith(OPTIONAL):
            names = PLACEHOLDER.findall(line)
            if all(values.get(n, "").strip() for n in names):
                out.append(PLACEHOLDER.sub(lambda m: values[m.group(1)].strip(), line[2:]))
            continue

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            value = values.get(name, "").strip()
            if value:
                return value
            if name not in missing:
                missing.append(name)
            return unfilled_marker(name)

        out.append(PLACEHOLDER.sub(replace, line))
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")
    return text, tuple(missing)
