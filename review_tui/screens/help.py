"""`?`: every key of the screen underneath, from its bindings, so help never drifts.

The title names the screen as a rep knows it (its `HELP_TITLE`), never a class name.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for binding in [*self.under.BINDINGS, *self.app.BINDINGS]:
            if isinstance(binding, Binding) and binding.description:
                keys = binding.key_display or binding.key
                table.add_row(Text(keys), Text(binding.description))
        with VerticalScroll(id="help-box"):
            title = getattr(self.under, "HELP_TITLE", "Keys")
            yield Static(Text(str(title), style="bold"), id="help-title")
            yield Static(table)
            yield Static(
                Text("ctrl+p opens the command palette with the same actions.", style="dim")
            )

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
