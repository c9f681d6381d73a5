"""`supportgate ingest` and `supportgate export`: mail into the queue from files or an
IMAP history, and every stored message out again as JSON lines.

Files go through the same `ingest` as the SMTP front door, so a re-import is idempotent.
"""

from __future__ import annotations

import argparse
import json
import mailbox
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.cli.runtime import open_engine
from gateway.config import Config
from gateway.inbound.ingest import ingest
from storage.models import AnalysisRecord, Draft, Message, MessageState


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("ingest", help="store .eml files, directories, mbox files (or IMAP history)")
    p.add_argument("paths", nargs="*", help=".eml files, directories of them, or mbox files")
    p.add_argument("--imap", metavar="NAME", help="backfill the [[imap]] mailbox NAME instead")
    p.add_argument("--since", metavar="YYYY-MM-DD", help="with --imap: only mail since this date")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export", help="one JSON object per message")
    p.add_argument("--format", choices=["jsonl"], default="jsonl")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export)


def iter_messages(paths: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) for .eml files, directories of them, and mbox files."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                yield from iter_messages([str(child)])
        elif _is_mbox(path):
            box = mailbox.mbox(str(path), create=False)
            try:
                for i, key in enumerate(box.iterkeys()):
                    yield f"{path}#{i + 1}", box.get_bytes(key)
            finally:
                box.close()
        else:
            yield str(path), path.read_bytes()


def _is_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".mbox":
        return True
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def cmd_ingest(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    if args.imap:
        from gateway.inbound.imap.poller import ImapError, backfill

        try:
            since = date.fromisoformat(args.since) if args.since else None
        except ValueError:
            print(f"ingest: --since expects YYYY-MM-DD, got {args.since!r}", file=sys.stderr)
            return 2
        try:
            stored = backfill(config, engine, args.imap, since=since, progress=True)
        except ImapError as exc:
            print(f"error: imap {args.imap}: {exc}", file=sys.stderr)
            return 1
        print(f"imap {args.imap}: {stored} new message(s) stored")
        return 0
    if not args.paths:
        print(
            "ingest: give .eml files, directories or mbox files (or --imap NAME)", file=sys.stderr
        )
        return 2
    new = dupes = failed = refused = 0
    for label, raw in _safe_iter(args.paths):
        if raw is None:
            failed += 1
            continue
        reason = not_mail(raw)
        if reason:
            print(f"refused: {label}: {reason}", file=sys.stderr)
            refused += 1
            continue
        try:
            result = ingest(engine, raw, source="file", envelope_from=None)
        except Exception as exc:
            print(f"error: {label}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if result.duplicate:
            dupes += 1
        else:
            new += 1
    tail = f", {refused} refused (not mail)" if refused else ""
    print(f"ingested {new} new, {dupes} duplicate, {failed} failed{tail}")
    return 1 if failed or refused else 0


_FIELD = re.compile(rb"^[!-9;-~]+:")
_KNOWN = re.compile(rb"^(?:from|to|date|subject|message-id|received|return-path):", re.I | re.M)


def not_mail(raw: bytes) -> str:
    """Why `raw` is not a mail message ("" when it is one): a file given by mistake (a
    binary, a README) must not become a ticket with a draft."""
    head = raw[:65536]
    if b"\x00" in head[:4096]:
        return "binary data, not a mail message"
    text = head.lstrip(b"\r\n")
    end = min((i for i in (text.find(b"\r\n\r\n"), text.find(b"\n\n")) if i >= 0), default=-1)
    block = text if end < 0 else text[:end]
    if not _FIELD.match(block) and not block.startswith(b"From "):
        return "no header block (a mail starts with header lines such as From: and Subject:)"
    if not _KNOWN.search(block):
        return "no From, To, Date, Subject, Message-ID or Received header"
    return ""


def _safe_iter(paths: Sequence[str]) -> Iterator[tuple[str, bytes | None]]:
    for name in paths:
        try:
            yield from iter_messages([name])
        except OSError as exc:
            print(f"error: {name}: {exc.strerror or exc}", file=sys.stderr)
            yield name, None


def export_rows(engine: Engine) -> Iterator[dict[str, Any]]:
    with Session(engine) as session:
        last_id = 0
        while True:
            batch = session.exec(
                select(Message)
                .where(col(Message.id) > last_id)
                .order_by(col(Message.id))
                .limit(500)
            ).all()
            if not batch:
                return
            ids = [m.id for m in batch]
            analyses = {
                a.message_pk: a
                for a in session.exec(
                    select(AnalysisRecord).where(col(AnalysisRecord.message_pk).in_(ids))
                ).all()
            }
            drafts = {
                d.message_pk: d
                for d in session.exec(select(Draft).where(col(Draft.message_pk).in_(ids))).all()
            }
            for m in batch:
                pk = int(m.id or 0)
                yield _export_row(m, analyses.get(pk), drafts.get(pk))
            last_id = int(batch[-1].id or 0)


def _export_row(m: Message, a: AnalysisRecord | None, d: Draft | None) -> dict[str, Any]:
    parsed = m.parsed or {}
    row: dict[str, Any] = {
        "id": m.id,
        "ticket_id": m.ticket_id,
        "message_id": m.message_id,
        "direction": m.direction,
        "source": m.source,
        "from": m.from_addr,
        "to": m.to_addrs,
        "subject": m.subject,
        "received_at": m.received_at.isoformat(),
        "state": m.state,
        "shunt_reason": m.error if m.state == MessageState.SHUNTED else None,
        "suppression_reason": m.suppression_reason,
        "thread_signal": m.thread_signal,
        "body": parsed.get("text"),
        "attachments": [
            {"name": x.get("name"), "size": x.get("size")} for x in parsed.get("attachments", [])
        ],
        "defects": parsed.get("defects", []),
    }
    if a is not None:
        row.update(
            intent=a.intent,
            confidence=a.confidence,
            abstained=a.abstained,
            scores=a.scores,
            entities=a.entities,
            log_findings=a.log_findings,
            model_version=a.model_version,
        )
    if d is not None:
        row["suggestions"] = d.suggestions
        row["draft"] = {
            "id": d.id,
            "state": d.state,
            "subject": d.subject,
            "body": d.body,
            "rationale": d.rationale,
            "unfilled": d.unfilled,
            "version": d.version,
            "language": (d.evidence or {}).get("language"),
            "brief": (d.evidence or {}).get("brief"),
        }
    return row


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    engine = open_engine(config)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for row in export_rows(engine):
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
