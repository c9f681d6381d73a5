"""The `review` command: config to plain values, the KB re-drafter, the seed guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from gateway.cli.main import main
from gateway.cli.review import build_redrafter
from gateway.config import Config, StorageConfig
from review_tui.screens.ticket import TicketScreen
from storage.models import Ticket
from storage.seed import SeedResult
from tests.review_tui.conftest import settle
from tests.review_tui.test_app import AppFactory, draft, open_draft

REPO = Path(__file__).resolve().parents[3]


def _config_file(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\nurl = "sqlite:///{db}"\n[review]\nactor = "alice"\n')
    return path


def test_redrafter_fills_from_the_real_kb() -> None:
    redraft = build_redrafter(Config(base_dir=REPO))
    entities = [{"label": "CLOUD_REGION", "text": "eu-west-1", "start": 0, "end": 9}]
    body, unfilled = redraft("quotas", entities, "Priya Raman", 42)
    assert body.startswith("Hi Priya Raman,") and "eu-west-1" in body
    assert body.rstrip().endswith("Best regards,")
    # A fact the answer needs is asked for in words, never left as a blocking placeholder.
    assert unfilled == [] and "could you send us your account or project id" in body
    with pytest.raises(ValueError, match="not in"):
        redraft("no-such-article", [], "x", 1)


def test_redrafter_absent_without_kb(tmp_path: Path) -> None:
    assert build_redrafter(Config(base_dir=tmp_path)) is None


def test_seed_fills_only_an_empty_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "q.sqlite3"
    config = _config_file(tmp_path, db)
    # Under pytest there is no terminal: the seed happens, then the UI refuses to open.
    assert main(["--config", str(config), "review", "--seed", "12"]) == 2
    assert "needs an interactive terminal" in capsys.readouterr().err
    from storage.db import make_engine

    engine = make_engine(f"sqlite:///{db}")
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 12
    assert main(["--config", str(config), "review", "--seed", "5"]) == 2
    assert "already holds 12 tickets" in capsys.readouterr().err
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Ticket)).one() == 12
    engine.dispose()
    assert main(["--config", str(config), "review", "--seed", "-1"]) == 2


def test_config_gives_database_url(tmp_path: Path) -> None:
    config = Config(storage=StorageConfig(url="sqlite:///var/q.sqlite3"), base_dir=tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path / 'var/q.sqlite3'}"


async def test_pick_article_redrafts_with_real_kb(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[4]  # a quota_limits ticket
    before = draft(db, draft_id)
    assert before.intent == "quota_limits"
    app = make_app(redraft=build_redrafter(Config(base_dir=REPO)))
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        await pilot.press("a", "enter")  # the current article is highlighted first
        await settle(pilot)
        assert isinstance(app.screen, TicketScreen)
        assert app.screen.saved_body == draft(db, draft_id).body
    after = draft(db, draft_id)
    assert after.body != before.body and "quota increase request" in after.body
    assert after.unfilled == [] and after.version == before.version + 1
    assert "account or project id" in after.body


async def test_pick_article_without_drafter_points_to_it(
    db: Engine, seeded: SeedResult, make_app: AppFactory
) -> None:
    draft_id = seeded.draft_ids[0]
    app = make_app()
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        await open_draft(pilot, app, draft_id)
        await pilot.press("a", "down", "enter")
        await settle(pilot)
    after = draft(db, draft_id)
    assert after.article_id == "feature-requests"
    assert after.body.endswith("See: Feature requests\n")
