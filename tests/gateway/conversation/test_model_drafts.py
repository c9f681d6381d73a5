"""`[draft] backend = "openai"` in the real pipeline: a verified model draft replaces the
template's; an invented value or a dead server leaves the template's draft, and the
brief says why. Nothing is ever sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.runner import run_until_idle
from storage.models import Draft, Outbox
from tests.support.chat_server import chat, running_chat_server
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[3]
OUTAGE = REPO / "gateway" / "samples" / "01.eml"
GROUNDED = (
    "Hi Dana,\n\nThanks for the nginx log. The upstream timeouts to 10.2.0.4 on "
    "api.acme-shop.com in eu-west-1 are what we are investigating now; we will update "
    "this ticket as soon as we know more.\n\nBest regards,"
)
INVENTED = GROUNDED.replace("10.2.0.4", "10.9.9.9") + " Your credit of $250 is on its way."


def draft_for(engine: Engine, config: Config) -> Draft:
    ingest(engine, OUTAGE.read_bytes(), source="test")
    run_until_idle([AnalysisRunner(config, engine)])
    with Session(engine) as session:
        assert session.exec(select(Outbox)).all() == []  # a draft, never a send
        return session.exec(select(Draft)).one()


def model_config(make_config: Callable[..., Config], base_url: str) -> Config:
    return make_config(
        kb={"dir": str(REPO / "kb")},
        draft={"backend": "openai", "base_url": base_url, "model": "m", "timeout_seconds": 2},
    )


def test_a_verified_model_draft_is_the_body(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    with running_chat_server([chat(GROUNDED)]) as server:
        draft = draft_for(engine, model_config(make_config, server.base_url))
        prompt = server.requests[0]["json"]["messages"][-1]["content"]
    assert draft.body == GROUNDED
    assert "written by model" in draft.evidence["brief"]["decision"]
    assert "api.acme-shop.com" in prompt  # the mail went into the prompt


def test_an_invented_value_keeps_the_template_draft_and_says_why(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    with running_chat_server([chat(INVENTED)]) as server:
        draft = draft_for(engine, model_config(make_config, server.base_url))
    assert draft.body.startswith("Hi Dana Whitfield,") and "10.9.9.9" not in draft.body
    reason = draft.evidence["brief"]["model"]
    assert "refused" in reason and "10.9.9.9" in reason and "250" in reason


def test_a_dead_model_server_never_blocks_drafting(
    engine: Engine, make_config: Callable[..., Config]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    draft = draft_for(engine, model_config(make_config, dead))
    assert draft.body.startswith("Hi Dana Whitfield,")
    assert "unavailable" in draft.evidence["brief"]["model"]
