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
4. system_sender — MAILER-DAEMON, postmaster, noreply, a null Return-Path, or a null
                 envelope sender (`MAIL FROM:<>`, stored at ingest): RFC 5321 reserves
                 it for delivery reports and RFC 3834 asks auto-responders to use it, so
                 whatever its From says, such mail is a machine's;
5. own_mail    — our own outbound mail coming back (our Message-ID or From);
6. loop        — a per-sender and per-thread hourly rate limit, which stops loops even
                 when every header lies.

The loop counters (`rates.py`) count each message in the hour it arrived (a Date header
is the sender's word, and a flood may date itself an hour apart); a bounce's delivery
report is read, and the bounce linked to the outbox row it reports on, in `bounces.py`.
Both build the `ScreenVerdict` of `verdict.py`; the pipeline's names are importable here.

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
from datetime import datetime
from email import policy
from email.message import Message as EmailMessage

from flufl.bounce import all_failures
from sqlmodel import Session, col, select

from gateway import headers as h
from gateway.config import Config
from gateway.conversation.bounces import (
    BOUNCE_MATCH_WINDOW,
    DeliveryStatus,
    b2s,
    delivery_status,
    link_bounce,
    original_ids,
    smtp_reply_in,
)
from gateway.conversation.rates import bump, check_rate, message_time, prune_rates, thread_key
from gateway.conversation.verdict import (
    AUTO_REPLY,
    BOUNCE,
    DATE_MAX_AGE,
    DATE_MAX_SKEW,
    LIST,
    LOOP,
    OWN_MAIL,
    SYSTEM_SENDER,
    ScreenVerdict,
    bracketed,
)
from nlp.types import ParsedMessage
from storage.models import Message, Outbox

__all__ = [
    "AUTO_REPLY", "BOUNCE", "BOUNCE_MATCH_WINDOW", "DATE_MAX_AGE", "DATE_MAX_SKEW", "LIST",
    "LOOP", "NULL_SENDER", "OWN_MAIL", "SYSTEM_SENDER", "ScreenVerdict", "bump", "check_rate",
    "classify", "link_bounce", "message_time", "prune_rates", "screen", "thread_key",
]  # fmt: skip

# flufl.bounce logs every detector it runs at INFO; the verdict carries what matters.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

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
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Mail-Autoreply")
_BULK_PRECEDENCE = {"bulk", "junk", "auto_reply"}
NULL_SENDER = "null envelope sender MAIL FROM:<> (delivery report or auto-reply, RFC 5321/3834)"


def screen(
    parsed: ParsedMessage,
    *,
    session: Session,
    config: Config,
    now: datetime,
    raw: bytes | None = None,
    received_at: datetime | None = None,
    envelope_from: str | None = None,
) -> ScreenVerdict | None:
    """The first check that matches, or None for mail a human should answer.

    `received_at` (the arrival) and `envelope_from` (the SMTP reverse path) are taken,
    when not given, from the stored row of `raw` when the session holds it.
    """
    tree = _mime_tree(raw) if raw is not None else None
    static = classify(parsed, tree=tree, own_addresses=config.own_addresses())
    if static is not None:
        return static
    row = _loaded_row(session, raw) if raw is not None else None
    if envelope_from is None and row is not None:
        envelope_from = row.envelope_from
    if envelope_from is not None and envelope_from.strip() in ("<>", ""):
        return ScreenVerdict(SYSTEM_SENDER, NULL_SENDER)
    if _is_own_message_id(session, parsed.message_id):
        return ScreenVerdict(OWN_MAIL, f"Message-ID {parsed.message_id} is one we sent")
    if received_at is None and row is not None:
        received_at = row.received_at
    source = row.source if row is not None else ""
    return check_rate(
        parsed, session=session, config=config, now=now, received_at=received_at, source=source
    )


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
            temporary = {b2s(x) for x in temp}
            permanent = {b2s(x) for x in perm}
        except Exception:  # a detector choking on odd MIME must not stop screening
            pass
    if not (is_report or permanent or temporary or (subject_says and from_daemon)):
        return None
    status = delivery_status(tree) if tree is not None else DeliveryStatus()
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
    diagnostic = status.diagnostic or smtp_reply_in(parsed.text)
    if diagnostic:
        reason += f": {diagnostic[:200]}"
    return ScreenVerdict(
        BOUNCE,
        reason,
        original_ids=original_ids(parsed, tree),
        permanent=failed,
        diagnostic=diagnostic,
        recipients=recipients,
        failed_recipients=failed_recipients,
        written_at=parsed.date,
    )


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


# ---------------------------------------------------------------- own mail


def _is_own_message_id(session: Session, message_id: str | None) -> bool:
    if not message_id:
        return False
    outbound = session.exec(
        select(Message.id).where(Message.message_id == message_id, Message.direction == "outbound")
    ).first()
    if outbound is not None:
        return True
    ours = session.exec(
        select(Outbox.id).where(col(Outbox.message_id).in_([message_id, bracketed(message_id)]))
    ).first()
    return ours is not None


def _loaded_row(session: Session, raw: bytes) -> Message | None:
    """The stored inbound message with these bytes, if the session holds its row.

    The pipeline loads the row before screening, so no query is needed; the bytes' hash
    names the row exactly (ingest stores each distinct message once).
    """
    digest = hashlib.sha256(raw).hexdigest()
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Message) and obj.sha256 == digest and obj.direction == "inbound":
            return obj
    return None
