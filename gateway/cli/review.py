"""`supportgate review`: open the review UI with plain values taken from config.

The gateway is the composition root: it reads config.toml, then hands the review UI
nothing but plain values (database URL, rep name, roles, limits, the desk's teams and
reply targets) and one function that re-drafts a reply from a KB article with the
project's own drafting code. The UI never
imports the gateway, so either side can change or crash without the other.

The rep's name goes on every release and decides the ops role, so it is the operating
system account the UI runs under, not `$USER` (which anyone can set). `[review] actor`
may only repeat that account, or name any rep when run as root.
"""

from __future__ import annotations

import argparse
import os
import pwd
import sys
from collections.abc import Sequence
from typing import Any

from gateway.config import Config
from storage.db import init_db, make_engine


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("review", help="open the review queue (terminal UI)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="first fill an empty database with N realistic sample tickets (for trying it out)",
    )
    p.set_defaults(func=cmd_review)


def build_redrafter(config: Config) -> Any:
    """A function (article id, entities, customer name, ticket id) -> (body, unfilled)."""
    from nlp.drafting.compose import answer_body, entity_values, ticket_ref
    from nlp.drafting.kb import KnowledgeBase
    from nlp.types import Entity

    kb_dir = config.resolve_path(config.kb.dir)
    if not kb_dir.is_dir():
        return None
    kb = KnowledgeBase.from_dir(kb_dir)

    def redraft(
        article_id: str, entities: Sequence[dict[str, Any]], name: str, ticket_id: int
    ) -> tuple[str, list[str]]:
        article = kb.get(article_id)
        if article is None:
            raise ValueError(f"KB article {article_id!r} is not in {kb_dir}")
        found = [
            Entity(
                label=str(e.get("label", "")),
                text=str(e.get("text", "")),
                start=int(e.get("start", 0)),
                end=int(e.get("end", 0)),
                source=str(e.get("source", "body")),
            )
            for e in entities
        ]
        values = entity_values(found)
        values["customer_name"] = name.strip()
        values["ticket_ref"] = ticket_ref(ticket_id)
        # The rep picked this article by hand: its first answer, greeted and signed.
        body, unfilled = answer_body(article, values)
        return body, list(unfilled)

    return redraft


def _seed_if_empty(config: Config, count: int) -> str | None:
    from sqlmodel import Session, func, select

    from storage.models import Ticket
    from storage.seed import seed

    engine = make_engine(config.database_url)
    try:
        init_db(engine)
        with Session(engine) as session:
            existing = int(session.exec(select(func.count()).select_from(Ticket)).one())
        if existing:
            return f"--seed refused: the database already holds {existing} tickets"
        seed(engine, count=count)
    finally:
        engine.dispose()
    return None


def os_account() -> str:
    """The name of the account this process runs as."""
    return pwd.getpwuid(os.getuid()).pw_name


def rep_identity(config: Config, *, account: str | None = None, uid: int | None = None) -> str:
    """Who the rep is: the logged-in account; `[review] actor` may name another only as root."""
    account = account or os_account()
    named = config.review.actor.strip()
    if not named or named == account:
        return account
    if (os.getuid() if uid is None else uid) == 0:
        return named
    raise ValueError(
        f"[review] actor = {named!r} is not the account you are logged in as ({account}); "
        "remove it, or open the review as that account"
    )


def cmd_review(args: argparse.Namespace, config: Config) -> int:
    if args.seed < 0:
        print("review: --seed needs a positive number", file=sys.stderr)
        return 2
    if args.seed:
        refusal = _seed_if_empty(config, args.seed)
        if refusal:
            print(f"review: {refusal}", file=sys.stderr)
            return 2
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("review: needs an interactive terminal", file=sys.stderr)
        return 2
    return open_review(config)


def open_review(config: Config, *, ops: Sequence[str] | None = None) -> int:
    """Run the review UI on `config`'s database until the rep quits."""
    import review_tui

    try:
        actor = rep_identity(config)
        redraft = build_redrafter(config)
        from gateway.conversation.desk import desk_from
        from gateway.metrics.beside import beside_provider
        from storage.models import utcnow

        metrics = beside_provider(config, clock=utcnow)
        review_tui.run(
            config.database_url,
            actor=actor,
            ops=list(config.review.ops if ops is None else ops),
            bulk_ops_threshold=config.review.bulk_ops_threshold,
            bulk_window_minutes=config.review.bulk_window_minutes,
            lease_minutes=config.review.lease_minutes,
            refresh_seconds=config.review.refresh_seconds,
            page_size=config.review.page_size,
            from_address=config.sender.from_address,
            redraft=redraft,
            metrics_beside=metrics,
            desk=desk_from(config),
        )
    except ValueError as exc:
        print(f"review: {exc}", file=sys.stderr)
        return 2
    return 0
