"""A Spanish mail with a log, then its follow-up: one ticket, a Spanish draft that
quotes the log line and asks for nothing the customer already gave."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.models import Draft, Message

REPO = Path(__file__).resolve().parents[3]
LOG = (
    "2026-11-30T09:12:01Z INFO  checking credentials\n"
    "2026-11-30T09:12:02Z ERROR quota exceeded: QuotaExceeded for vCPU in eu-west-1 "
    "(limit 64, requested 80)\n"
    "2026-11-30T09:12:03Z INFO  rollout stopped\n"
)


def mail(mid: str, body: str, *, reply_to: str = "", log: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Lucía Fernández <lucia@datos.example>"
    msg["To"] = "support@example.com"
    msg["Subject"] = ("Re: " if reply_to else "") + "Límite de vCPU en eu-west-1"
    msg["Message-ID"] = f"<{mid}@datos.example>"
    if reply_to:
        msg["In-Reply-To"] = f"<{reply_to}@datos.example>"
        msg["References"] = f"<{reply_to}@datos.example>"
    msg.set_content(body)
    if log:
        msg.add_attachment(LOG.encode(), maintype="text", subtype="plain", filename="deploy.log")
    return msg.as_bytes()


def test_a_spanish_follow_up_is_drafted_in_spanish_with_the_thread(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    config = make_config(kb={"dir": str(REPO / "kb")})
    first = mail(
        "m1",
        "Hola equipo,\n\nnuestro despliegue en eu-west-1 se detiene porque superamos el límite "
        "de vCPU de la cuenta acct-4821. Necesitamos aumentar la cuota de vCPU de 64 a 96 "
        "para el lanzamiento del viernes. ¿Pueden ampliar el límite, por favor? Adjunto el "
        "log del despliegue.\n\nGracias,\nLucía",
        log=True,
    )
    follow_up = mail("m2", "¿Alguna novedad? Seguimos bloqueados.\n\nLucía", reply_to="m1")
    ingest(engine, first, source="test")
    run_until_idle([AnalysisRunner(config, engine)])
    ingest(engine, follow_up, source="test")
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        messages = session.exec(select(Message).order_by(col(Message.id))).all()
        assert len({m.ticket_id for m in messages}) == 1
        latest = session.exec(select(Draft).where(Draft.message_pk == messages[-1].id)).one()
    brief = latest.evidence["brief"]
    assert latest.intent == "quota_limits", latest.evidence.get("notes")
    assert brief["language"] == "es"
    assert latest.body.startswith("Hola Lucía Fernández:"), brief["decision"]
    # The log of the first mail reaches the follow-up's reply, quoted.
    assert "QuotaExceeded for vCPU" in latest.body
    # The account id and the region were given in the thread: never asked for again.
    assert "id de cuenta" not in latest.body and "región" not in latest.body.split("Hola")[0]
    assert brief["missing"] == []
    assert any(f["source"].startswith("thread") for f in brief["facts"]["account_id"])
