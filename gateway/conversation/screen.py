"""Screening: recognise mail that must never get a drafted reply, and say why.

Mail loops are the support desk's worst night: an auto-responder answers our reply,
we answer the auto-reply, and thousands of messages pile up by morning. So before any
drafting, each message passes a short list of named checks, most specific first:

1. bounce      — RFC 3464 delivery reports (`multipart/report`), and the non-standard
                 bounces of common MTAs via flufl.bounce (Mailman's detector library);
2. auto_reply  — RFC 3834 `Auto-Submitted` other than `no`, vendor headers
                 (`X-Autoreply`, `X-Autorespond`, Exchange's inbox-rules loop header),
                 `Precedence: bulk/junk/auto_reply`, an "Automatic reply:" subject
                 prefix, and read receipts (`message/disposition-notification`);
3. list        — `List-Id` or `Precedence: list`;
4. system_sender — MAILER-DAEMON, postmaster, noreply, or a null Return-Path;
5. own_mail    — our own outbound mail coming back (our Message-ID or From);
6. loop        — a per-sender and per-thread hourly rate limit, which stops loops even
                 when every header lies.

The loop counters count each message in the hour it was written, not the hour it is
processed: a backlog after an outage, or an IMAP folder synced for the first time, must
not look like a flood. The Date header is believed when it lies in the week before the
message arrived (15 minutes of clock skew allowed); otherwise the arrival time counts. A
loop is written in real time, so it still lands in one hour. Counters are upserts (one
statement), so runners counting the same sender at once both succeed.

Body text is never a screening signal: a customer who writes "this is an automatic
reply to your question" is a customer. Each verdict carries a kind and a sentence a rep
can read; the pipeline stores it as the message's suppression reason. A bounce is also
linked to the outbox row it reports on and marks that delivery failed.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import Message as EmailMessage

from flufl.bounce import all_failures
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.config import Config
from nlp.types import ParsedMessage
from storage.audit import audit
from storage.models import (
    Draft,
    DraftState,
    Message,
    Outbox,
    OutboxState,
    SenderRate,
    utcnow,
)

# flufl.bounce logs every detector it runs at INFO; the verdict carries what matters.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

BOUNCE = "bounce"
AUTO_REPLY = "auto_reply"
LIST = "list"
SYSTEM_SENDER = "system_sender"
OWN_MAIL = "own_mail"
LOOP = "loop"

_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(matic)?[ -]?(reply|response)|autoreply|out of (the )?office"
    r"( reply| autoreply)?|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica)"
    r"\s*:",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliver(able|ed)|delivery (status notification|failure|has failed)|"
    r"returned mail|failure notice|mail delivery (failed|failure|system)|"
    r"non[- ]delivery|delivery notification)",
    re.IGNORECASE,
)
_SYSTEM_LOCAL = re.compile(
    r"^(mailer-daemon|mail-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)([+._-].*)?$",
    re.IGNORECASE,
)
_MSGID_LINE = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_SMTP_REPLY = re.compile(r"(?<![\d.])[45]\d\d[ -][^\n]{3,160}")
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Mail-Autoreply")
_BULK_PRECEDENCE = {"bulk", "junk", "auto_reply"}
# How far a Date header may precede the message's arrival, or run ahead of it, and count.
DATE_MAX_AGE = timedelta(days=7)
DATE_MAX_SKEW = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class ScreenVerdict:
    """Why a message gets no draft. `original_ids` are the Message-IDs a bounce reports."""

    kind: str
    reason: str
    original_ids: tuple[str, ...] = ()
    permanent: bool = False
    diagnostic: str = ""
    recipients: tuple[str, ...] = field(default=())
    # The addresses that failed for good; a mixed report also names delayed ones.
    failed_recipients: tuple[str, ...] = field(default=())
    # A bounce's own Date: no reply sent after it can be the one it reports on.
    written_at: datetime | None = None

    @property
    def text(self) -> str:
        return f"{self.kind}: {self.reason}"


def screen(
    parsed: ParsedMessage,
    *,
    session: Session,
    config: Config,
    now: datetime,
    raw: bytes | None = None,
    received_at: datetime | None = None,
) -> ScreenVerdict | None:
    """The first check that matches, or None for mail a human should answer.

    `received_at` is the message's arrival; if not given, it is taken from the stored
    row of `raw` when the session holds it, else `now`.
    """
    tree = _mime_tree(raw) if raw is not None else None
    static = classify(parsed, tree=tree, own_addresses=config.own_addresses())
    if static is not None:
        return static
    if _is_own_message_id(session, parsed.message_id):
        return ScreenVerdict(OWN_MAIL, f"Message-ID {parsed.message_id} is one we sent")
    if received_at is None and raw is not None:
        received_at = _loaded_arrival(session, raw)
    return check_rate(parsed, session=session, config=config, now=now, received_at=received_at)


def classify(
    parsed: ParsedMessage, *, tree: EmailMessage | None, own_addresses: set[str]
) -> ScreenVerdict | None:
    """Header and structure checks that need no database."""
    for check in (_bounce, _auto_reply, _mailing_list, _system_sender):
        verdict = check(parsed, tree)
        if verdict is not None:
            return verdict
    sender = parsed.from_addr.lower()
    if sender and sender in own_addresses:
        return ScreenVerdict(OWN_MAIL, f"From {sender} is one of our own addresses")
    return None


def _mime_tree(raw: bytes) -> EmailMessage | None:
    try:
        return email.message_from_bytes(raw, policy=policy.compat32)
    except Exception:  # screening falls back to the parsed headers alone
        return None


# ---------------------------------------------------------------- bounces


def _bounce(parsed: ParsedMessage, tree: EmailMessage | None) -> ScreenVerdict | None:
    ctype = (parsed.content_type or "").lower()
    report_type = ""
    if tree is not None:
        ctype = tree.get_content_type()
        report_type = (tree.get_param("report-type") or "").__str__().lower()
    if ctype == "multipart/report" and report_type == "disposition-notification":
        return ScreenVerdict(AUTO_REPLY, "read receipt (message/disposition-notification)")
    is_report = ctype == "multipart/report"
    local = parsed.from_addr.split("@", 1)[0].lower()
    from_daemon = local in {"mailer-daemon", "mail-daemon", "postmaster"}
    subject_says = bool(_BOUNCE_SUBJECT.match(parsed.subject or ""))
    # flufl.bounce's heuristics match prose, and a customer may paste a bounce into a
    # question; they only count for mail that already looks machine-generated.
    if not (is_report or from_daemon or subject_says):
        return None
    permanent: set[str] = set()
    temporary: set[str] = set()
    if tree is not None:
        try:
            temp, perm = all_failures(tree)
            temporary = {_b2s(x) for x in temp}
            permanent = {_b2s(x) for x in perm}
        except Exception:  # a detector choking on odd MIME must not stop screening
            pass
    if not (is_report or permanent or temporary or (subject_says and from_daemon)):
        return None
    status = _delivery_status(tree) if tree is not None else DeliveryStatus()
    failed = bool(permanent) or status.action == "failed" or (not is_report and not temporary)
    # A block without Action: (flufl skips it) still names a failed recipient by its 5.x.x.
    known = permanent | temporary
    recipients = tuple(sorted(known | set(status.failed))) if known else status.recipients
    if permanent or status.failed:
        failed_recipients = tuple(sorted(permanent | set(status.failed)))
    elif failed and not temporary:
        failed_recipients = recipients
    else:
        failed_recipients = ()
    if failed:
        what = "delivery failure"
    elif status.action in ("delayed", "relayed", "delivered", "expanded"):
        what = f"delivery report ({status.action})"
    else:
        what = "delivery report"
    how = f"multipart/report ({report_type or 'unknown type'})" if is_report else "MTA bounce"
    reason = f"{what}, {how}"
    if recipients:
        reason += f" for {', '.join(recipients[:3])}"
    diagnostic = status.diagnostic or _smtp_reply_in(parsed.text)
    if diagnostic:
        reason += f": {diagnostic[:200]}"
    return ScreenVerdict(
        BOUNCE,
        reason,
        original_ids=_original_ids(parsed, tree),
        permanent=failed,
        diagnostic=diagnostic,
        recipients=recipients,
        failed_recipients=failed_recipients,
        written_at=parsed.date,
    )


def _smtp_reply_in(text: str) -> str:
    """The first SMTP reply quoted in a non-standard bounce ("550 No such user")."""
    match = _SMTP_REPLY.search(text[:20_000])
    return h.clean(match.group(0), 200) if match else ""


def _b2s(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    action: str = ""
    diagnostic: str = ""
    recipients: tuple[str, ...] = ()
    # Recipients whose own block says failed (Action: failed, or a 5.x.x Status).
    failed: tuple[str, ...] = ()


_DSN_BLOCK_BREAK = re.compile(r"\r?\n[ \t]*\r?\n")
_DSN_FIELD = re.compile(
    r"^(action|status|diagnostic-code|final-recipient|original-recipient)[ \t]*:[ \t]*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)


def _status_text(part: EmailMessage) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # the stdlib split the per-recipient blocks
        return "\n\n".join(b.as_string() for b in payload if isinstance(b, EmailMessage))
    data = part.get_payload(decode=True)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)


def _delivery_status(tree: EmailMessage) -> DeliveryStatus:
    """Action, Status/Diagnostic-Code and recipients from message/delivery-status parts.

    Action is often missing in the wild; a 5.x.x Status means failed, 4.x.x delayed.
    """
    actions: list[str] = []
    diagnostic = ""
    recipients: list[str] = []
    failed: list[str] = []
    for part in tree.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        # One block per recipient (after the per-message one): which one failed matters.
        for block in _DSN_BLOCK_BREAK.split(_status_text(part)):
            block_actions: list[str] = []
            named: list[str] = []
            for name, value in _DSN_FIELD.findall(block):
                name, value = name.lower(), h.clean(value)
                if name == "action":
                    block_actions.append(value.lower())
                elif name == "status":
                    block_actions.append({"5": "failed", "4": "delayed"}.get(value[:1], ""))
                    diagnostic = diagnostic or value
                elif name == "diagnostic-code":
                    diagnostic = value
                else:
                    named.append(value.split(";", 1)[-1].strip())
            actions.extend(block_actions)
            recipients.extend(r for r in dict.fromkeys(named) if r not in recipients)
            if "failed" in block_actions:
                failed.extend(r for r in dict.fromkeys(named) if r not in failed)
    action = "failed" if "failed" in actions else next((a for a in actions if a), "")
    return DeliveryStatus(action, diagnostic, tuple(recipients), tuple(failed))


def _original_ids(parsed: ParsedMessage, tree: EmailMessage | None) -> tuple[str, ...]:
    """Message-IDs of the mail a bounce reports on: attached original, headers, text."""
    ids: list[str] = []
    if tree is not None:
        for part in tree.walk():
            ctype = part.get_content_type()
            if ctype == "message/rfc822":
                inner = part.get_payload()
                first = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(first, EmailMessage):
                    ids.extend(h.message_ids(first.get("Message-ID")))
            elif ctype in ("text/rfc822-headers", "text/plain"):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    text = payload.decode("utf-8", "replace")
                    for match in _MSGID_LINE.findall(text):
                        ids.extend(h.message_ids(match))
    else:
        for match in _MSGID_LINE.findall(parsed.text):
            ids.extend(h.message_ids(match))
    if parsed.in_reply_to:
        ids.append(parsed.in_reply_to)
    ids.extend(parsed.references)
    return tuple(dict.fromkeys(i for i in ids if i and i != parsed.message_id))


# ---------------------------------------------------------------- auto-replies, lists


def _auto_reply(parsed: ParsedMessage, tree: EmailMessage | None) -> ScreenVerdict | None:
    auto = (parsed.header("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return ScreenVerdict(AUTO_REPLY, f"Auto-Submitted: {auto} (RFC 3834)")
    for name in _AUTO_HEADERS:
        if parsed.header(name) is not None:
            return ScreenVerdict(AUTO_REPLY, f"{name} header present")
    if parsed.header("X-MS-Exchange-Inbox-Rules-Loop") is not None:
        return ScreenVerdict(
            AUTO_REPLY, "Exchange inbox rule reply (X-MS-Exchange-Inbox-Rules-Loop)"
        )
    if (parsed.header("X-Autogenerated") or "").strip().lower() == "reply":
        return ScreenVerdict(AUTO_REPLY, "X-Autogenerated: Reply")
    precedence = (parsed.header("Precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return ScreenVerdict(AUTO_REPLY, f"Precedence: {precedence}")
    if _AUTO_SUBJECT.match(parsed.subject or ""):
        return ScreenVerdict(AUTO_REPLY, f"out-of-office subject {parsed.subject[:80]!r}")
    return None


def _mailing_list(parsed: ParsedMessage, tree: EmailMessage | None) -> ScreenVerdict | None:
    list_id = parsed.header("List-Id")
    if list_id is not None:
        return ScreenVerdict(LIST, f"mailing-list traffic (List-Id {h.clean(list_id, 120)})")
    if (parsed.header("Precedence") or "").strip().lower() == "list":
        return ScreenVerdict(LIST, "mailing-list traffic (Precedence: list)")
    return None


def _system_sender(parsed: ParsedMessage, tree: EmailMessage | None) -> ScreenVerdict | None:
    local = parsed.from_addr.split("@", 1)[0]
    if parsed.from_addr and _SYSTEM_LOCAL.match(local):
        return ScreenVerdict(SYSTEM_SENDER, f"system sender {parsed.from_addr}")
    return_path = parsed.header("Return-Path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return ScreenVerdict(SYSTEM_SENDER, "null Return-Path <> (automated mail)")
    return None


# ---------------------------------------------------------------- own mail, rate limit


def _bracketed(msgid: str) -> str:
    return msgid if msgid.startswith("<") else f"<{msgid}>"


def _is_own_message_id(session: Session, message_id: str | None) -> bool:
    if not message_id:
        return False
    outbound = session.exec(
        select(Message.id).where(Message.message_id == message_id, Message.direction == "outbound")
    ).first()
    if outbound is not None:
        return True
    ours = session.exec(
        select(Outbox.id).where(col(Outbox.message_id).in_([message_id, _bracketed(message_id)]))
    ).first()
    return ours is not None


_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?|wg)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def thread_key(parsed: ParsedMessage) -> str:
    """A key that is equal for every message of one conversation, before threading."""
    if parsed.references:
        return f"thread:{parsed.references[0]}"
    if parsed.in_reply_to:
        return f"thread:{parsed.in_reply_to}"
    subject = " ".join(_PREFIX.sub("", parsed.subject or "").lower().split())
    return f"thread:{parsed.from_addr.lower()}:{subject}"[:998]


def _loaded_arrival(session: Session, raw: bytes) -> datetime | None:
    """Arrival time of the stored message with these bytes, if the session holds its row.

    The pipeline loads the row before screening, so no query is needed; the bytes' hash
    names the row exactly (ingest stores each distinct message once).
    """
    digest = hashlib.sha256(raw).hexdigest()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Message) and obj.sha256 == digest and obj.direction == "inbound":
            return obj.received_at
    return None


def message_time(parsed: ParsedMessage, arrived: datetime) -> datetime:
    """The time a message counts in: its Date header if plausible, else its arrival."""
    date = parsed.date
    if date is not None:
        date = date if date.tzinfo is not None else date.replace(tzinfo=UTC)
        if arrived - DATE_MAX_AGE <= date <= arrived + DATE_MAX_SKEW:
            return date
    return arrived


def bump(session: Session, key: str, at: datetime) -> int:
    """Add one to `key`'s counter in the UTC hour of `at` and return the new count."""
    key = key[:998]  # the column's width: look up what is stored
    window = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    table = SenderRate.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"loop counters need SQLite or PostgreSQL, not {dialect}")
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(key=key, window_start=window, count=1)
        .on_conflict_do_update(
            index_elements=[table.c.key, table.c.window_start],
            set_={"count": table.c["count"] + 1},
        )
        .returning(table.c["count"])
    )
    return int(session.execute(stmt).scalar_one())


def check_rate(
    parsed: ParsedMessage,
    *,
    session: Session,
    config: Config,
    now: datetime,
    received_at: datetime | None = None,
) -> ScreenVerdict | None:
    """Count this message against its sender and thread; a loop past either limit.

    The hour is that of `message_time`, with `received_at` (else `now`) as the arrival.
    """
    limits = config.screen
    at = message_time(parsed, received_at or now)
    hour = f"the hour from {at.astimezone(UTC):%Y-%m-%d %H}:00 UTC"
    sender = parsed.from_addr.lower() or "(no sender)"
    per_sender = bump(session, f"sender:{sender}", at)
    per_thread = bump(session, thread_key(parsed), at)
    if per_sender > limits.max_per_sender_per_hour:
        return ScreenVerdict(
            LOOP,
            f"{sender} sent {per_sender} messages in {hour} "
            f"(limit {limits.max_per_sender_per_hour}): possible mail loop",
        )
    if per_thread > limits.max_per_thread_per_hour:
        return ScreenVerdict(
            LOOP,
            f"{per_thread} messages in this thread in {hour} "
            f"(limit {limits.max_per_thread_per_hour}): possible mail loop",
        )
    return None


def prune_rates(
    session: Session, *, now: datetime, keep: timedelta = DATE_MAX_AGE + timedelta(days=1)
) -> int:
    """Delete counters older than `keep`; returns how many went.

    Messages count in the hour of their Date, up to `DATE_MAX_AGE` back, so a counter
    is kept that long (and a day more) while a backlog may still add to it.
    """
    old = session.exec(select(SenderRate).where(col(SenderRate.window_start) < now - keep)).all()
    for row in old:
        session.delete(row)
    return len(old)


# ---------------------------------------------------------------- bounce → outbox


def link_bounce(
    session: Session, message: Message, verdict: ScreenVerdict, *, actor: str
) -> list[int]:
    """Attach a bounce to the outbox rows it reports on; a failure marks them failed.

    Returns the ids of the outbox rows found. The bounce joins their ticket so the rep
    sees it in the conversation.
    """
    if verdict.kind != BOUNCE:
        return []
    matched_by = "message-id"
    rows: list[Outbox] = []
    if verdict.original_ids:
        wanted = {i for oid in verdict.original_ids for i in (oid, _bracketed(oid))}
        query = select(Outbox).where(col(Outbox.message_id).in_(sorted(wanted)))
        rows = list(session.exec(query).all())
    elif verdict.recipients:
        # Only a bounce that names no message at all: one that quotes another message's
        # Message-ID reports on that message, not on our latest reply to the address.
        at = _written(verdict.written_at, message.received_at)
        # A permanent report fails only the replies to the addresses that failed for good.
        targets = verdict.failed_recipients if verdict.permanent else verdict.recipients
        rows, matched_by = _sent_to(session, targets, at), "recipient"
    found: list[int] = []
    for row in rows:
        found.append(int(row.id or 0))
        if message.ticket_id is None and row.ticket_id is not None:
            message.ticket_id = row.ticket_id
            message.thread_signal = "bounce"
            session.add(message)
        if not verdict.permanent or row.state == OutboxState.FAILED:
            continue
        if matched_by == "recipient" and row.state != OutboxState.SENT:
            continue  # the latest reply there is already failed or waiting to be retried
        old = row.state
        row.state = OutboxState.FAILED
        row.last_error = f"bounced: {verdict.diagnostic or verdict.reason}"[:2000]
        session.add(row)
        if row.draft_id is not None:
            draft = session.get(Draft, row.draft_id)
            if draft is not None and draft.state in (DraftState.APPROVED, DraftState.SENT):
                draft.state = DraftState.FAILED
                session.add(draft)
        audit(
            session,
            actor=actor,
            action="outbox.bounced",
            entity_type="outbox",
            entity_id=row.id,
            details={
                "from": old,
                "bounce_message": message.id,
                "reason": verdict.reason[:500],
                "matched_by": matched_by,
            },
        )
    return found


# A bounce that quotes none of our Message-IDs is matched to a reply by its failed
# recipient, but only to a reply sent this recently, and only to the latest one.
BOUNCE_MATCH_WINDOW = timedelta(days=7)
_RECENT_SENDS_SCANNED = 2000


def _written(date: datetime | None, arrived: datetime | None) -> datetime:
    """When a bounce was written: its Date (allowing DATE_MAX_SKEW for the MTA's clock),
    never later than its arrival. A bounce stored late (a backfill, a backlog) keeps the
    time it was written, so it cannot be matched to a reply sent since."""
    at = arrived or utcnow()
    if date is not None:
        date = date if date.tzinfo is not None else date.replace(tzinfo=UTC)
        at = min(at, date + DATE_MAX_SKEW)
    return at


def _sent_to(session: Session, recipients: tuple[str, ...], at: datetime) -> list[Outbox]:
    """The latest reply sent to each failed recipient within BOUNCE_MATCH_WINDOW before `at`.

    Some MTAs (qmail without the copy, many appliance gateways) report only the address
    that failed. Recipients are a JSON list, which no portable index can search, so the
    recent sends are read newest first and matched here.
    """
    wanted = {r.strip().strip("<>").lower() for r in recipients if "@" in r}
    if not wanted:
        return []
    recent = session.exec(
        select(Outbox)
        # Whatever its state now: if the latest reply there already failed (or waits
        # for a retry), the bounce is about it, not about an older one that went out.
        .where(col(Outbox.sent_at) >= at - BOUNCE_MATCH_WINDOW, col(Outbox.sent_at) <= at)
        .order_by(col(Outbox.sent_at).desc(), col(Outbox.id).desc())
        .limit(_RECENT_SENDS_SCANNED)
    ).all()
    latest: dict[str, Outbox] = {}
    for row in recent:
        for addr in row.to_addrs:
            key = h.split_address(addr)[1].lower()
            if key in wanted and key not in latest:
                latest[key] = row
    return list({id(row): row for row in latest.values()}.values())
