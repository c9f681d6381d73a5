"""Customer mail counted per time bin in the database, for volume spikes (`supportgate patterns`).

Spikes are judged over four weeks of five-minute bins. Reading every mail's time to
count them in Python (77,000 rows at a million messages a year) cost 0.6-0.8 s, most
of `patterns`; the database counts them instead and hands back one row per bin and
intent. Bins are whole multiples of `step` since the Unix epoch, so a bin starting at
a UTC midnight is one of them. The bin number is integer arithmetic on whole seconds
on both backends (no float rounding can move a mail across a bin edge): PostgreSQL
truncates to the second before taking the epoch, SQLite reads the seconds from the
text it stores. Each mail counts as it did when its time was read: by its own time
(else its arrival), once per analysis row, under "all" and under its intent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, extract, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from storage.models import AnalysisRecord, Message

ALL = "all"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _written() -> Any:
    return func.coalesce(Message.written_at, Message.received_at)


def _bin(seconds: int, dialect: str) -> Any:
    """The number of the `seconds`-long bin since the epoch that a mail's time falls in."""
    if dialect == "sqlite":
        # SQLite keeps 'YYYY-MM-DD HH:MM:SS.ffffff': the first 19 characters are the
        # whole seconds (its date functions would round the fraction to milliseconds).
        whole_seconds = cast(func.strftime("%s", func.substr(_written(), 1, 19)), Integer)
        return whole_seconds.op("/")(seconds)  # integer division: both are integers
    epoch = extract("epoch", func.date_trunc("second", _written()))
    return cast(func.floor(epoch / seconds), BigInteger)


def _inbound(since: datetime) -> tuple[Any, ...]:
    return (col(Message.direction) == "inbound", _written() >= since)


def mail_bins(session: Session, *, since: datetime, step: timedelta) -> dict[str, dict[int, int]]:
    """Customer mail since `since` per bin (`bin_start` turns a number into its start):
    "all" and each intent → {bin number: mails}."""
    seconds = int(step.total_seconds())
    if seconds <= 0 or step != timedelta(seconds=seconds):
        raise ValueError("bins must be a whole number of seconds")
    number = _bin(seconds, session.get_bind().dialect.name).label("bin")
    rows = (
        session.connection()
        .execute(
            sa_select(number, col(AnalysisRecord.intent), func.count())
            .select_from(Message)
            .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
            .where(*_inbound(since))
            .group_by(number, col(AnalysisRecord.intent))
        )
        .all()
    )
    every: dict[int, int] = {}
    out: dict[str, dict[int, int]] = {ALL: every}
    for number_, intent, n in rows:  # one row per bin and intent
        for bins in (every, out.setdefault(intent, {})) if intent else (every,):
            bins[number_] = bins.get(number_, 0) + n
    return out


def bin_start(number: int, step: timedelta) -> datetime:
    """When bin `number` (of `mail_bins`) starts, in UTC."""
    return EPOCH + number * step


def mail_times_within(
    session: Session, *, since: datetime, start: datetime, end: datetime, scope: str
) -> list[datetime]:
    """The own times of the mails `mail_bins` counts under `scope`, from `start` to `end`
    inclusive (for a sparkline around a spike)."""
    stmt = (
        sa_select(_written())
        .select_from(Message)
        .join(AnalysisRecord, col(AnalysisRecord.message_pk) == col(Message.id), isouter=True)
        .where(*_inbound(since), _written() >= start, _written() <= end)
    )
    if scope != ALL:
        stmt = stmt.where(col(AnalysisRecord.intent) == scope)
    return [at for (at,) in session.connection().execute(stmt).all()]
