"""The review app: owns the settings and the engine, and pushes the queue screen.

Kept small on purpose: each screen owns its bindings, its database workers and the
messages those workers post back. The app adds only what every screen shares (help,
the command palette entries, a notifier that never interprets markup).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import Engine
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from review_tui.screens.help import HelpScreen
from review_tui.screens.queue import QueueScreen
from review_tui.settings import ReviewSettings
from storage.db import make_engine
from storage.review import read_engine


class ReviewApp(App[None]):
    """Triage, edit and release drafts; the UI never sends mail itself."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "supportgate review"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
    ]

    def __init__(self, settings: ReviewSettings, *, engine: Engine | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        # Polls and page loads read here without taking SQLite's write lock.
        self.reader = read_engine(settings.database_url)
        self.sub_title = f"{settings.actor}{' (ops)' if settings.is_ops else ''}"

    def on_mount(self) -> None:
        self.push_screen(QueueScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def say(self, text: str, *, error: bool = False) -> None:
        """Notify without markup: messages may quote customer data."""
        self.notify(text, severity="error" if error else "information", markup=False)

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in screen.BINDINGS:
            if (
                isinstance(binding, Binding)
                and binding.description
                and not binding.action.startswith("cursor(")
            ):
                action = binding.action

                async def run(action: str = action, screen: Screen[object] = screen) -> None:
                    await screen.run_action(action)

                yield SystemCommand(binding.description, f"key: {binding.key}", run)
