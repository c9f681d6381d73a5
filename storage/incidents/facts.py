"""The facts incident candidates are found from: every customer mail of a window, and its keys.

Finding candidates (`nlp.incidents`) needs, for each mail of the last days, what it names:
entities, log signatures and the symptoms in the customer's words. The symptoms come from
a scan of the text, which over ten days at a million messages a year (27,000 mails) took
15-40 s per listing; reading each analysis's entities, log findings and text took
another 2 s. So each mail's keys are stored with its analysis (`AnalysisRecord.
incident_keys`), by the pipeline when it analyses the mail or, for mail analysed before
(an upgraded database), here when it is first read: the caller hands in the function
that computes them (storage never imports nlp) and commits. A read then fetches a few
short columns per mail, and the text only of mail whose keys are not known yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, null, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from storage.models import AnalysisRecord, Message, MessageState

Pair = tuple[str, str]
# (ticket id, customer address, the mail's own time, [(label, text)], [signature], intent,
#  subject and the customer's new text, the keys stored with its analysis or None). With
#  its keys known, the entities, signatures and text are left empty: they are not read.
MailFacts = tuple[
    int, str, datetime, list[Pair], list[str], str | None, str, list[list[str]] | None
]
# What computes a mail's keys from its entities, signatures and text (nlp.incidents.mail_keys).
KeysOf = Callable[[list[Pair], list[str], str], Iterable[Pair]]
_SKIPPED = (MessageState.SUPPRESSED, MessageState.SHUNTED)
# How much of the customer's new text is searched for symptoms.
TEXT_CHARS = 4000


def mail_words(subject: str | None, text: str | None) -> str:
    """The text a mail's symptoms are read from: its subject and the customer's new text."""
    return f"{subject or ''}\n{(text or '')[:TEXT_CHARS]}"


def keys_json(keys: Iterable[Pair]) -> list[list[str]]:
    """Keys as `AnalysisRecord.incident_keys` stores them: sorted [kind, value] pairs."""
    return [[kind, value] for kind, value in sorted(set(keys))]


def mail_facts(
    session: Session, *, since: datetime, keys_of: KeysOf | None = None
) -> list[MailFacts]:
    """Every customer mail with a ticket written since `since`, with what analysis found.

    With `keys_of`, every row comes with its keys: those not stored yet are computed and
    written to their analysis in `session`, which the caller commits.
    """
    unknown = col(AnalysisRecord.incident_keys).is_(None)

    def unless_known(column: Any) -> Any:
        return case((unknown, column), else_=null())

    written = func.coalesce(Message.written_at, Message.received_at)
    # Core, not the ORM's result machinery: tens of thousands of rows of plain values.
    rows = (
        session.connection()
        .execute(
            sa_select(
                col(Message.ticket_id),
                col(Message.from_addr),
                written,
                col(AnalysisRecord.intent),
                col(AnalysisRecord.incident_keys),
                col(AnalysisRecord.id),
                unless_known(col(AnalysisRecord.entities)),
                unless_known(col(AnalysisRecord.log_findings)),
                unless_known(col(AnalysisRecord.reply_text)),
                unless_known(col(Message.subject)),
            )
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
            .where(
                col(Message.direction) == "inbound",
                col(Message.ticket_id).is_not(None),
                col(Message.state).not_in(_SKIPPED),
                written >= since,
            )
        )
        .all()
    )
    out: list[MailFacts] = []
    found: dict[int, list[list[str]]] = {}
    for row in rows:
        tid, customer, at, intent, stored = (
            int(row[0]),
            (row[1] or "").lower(),
            row[2],
            row[3],
            row[4],
        )
        if stored is not None:
            out.append((tid, customer, at, [], [], intent, "", stored))
            continue
        aid, entities, findings, text, subject = row[5:]
        pairs = [
            (str(e.get("label", "")), str(e.get("text", "")))
            for e in entities or []
            if isinstance(e, dict)
        ]
        sigs = [str(f["signature"]) for f in findings or [] if f.get("signature")]
        words = mail_words(subject, text)
        if keys_of is None:
            out.append((tid, customer, at, pairs, sigs, intent, words, None))
            continue
        computed = keys_json(keys_of(pairs, sigs, words))
        if aid is not None:
            found[int(aid)] = computed
        out.append((tid, customer, at, [], [], intent, "", computed))
    store_keys(session, found)
    return out


def store_keys(session: Session, keys: dict[int, list[list[str]]]) -> None:
    """Store computed keys on their analyses (by analysis id), in the caller's transaction."""
    if not keys:
        return
    stmt = (
        update(AnalysisRecord)
        .where(col(AnalysisRecord.id) == bindparam("aid"))
        .values(incident_keys=bindparam("keys"))
    )
    session.connection().execute(stmt, [{"aid": a, "keys": k} for a, k in keys.items()])
