"""Small modal dialogs: one-key confirm, one-line prompt, pick one of a list, conflicts.

`PickOrTypeScreen` offers values to pick and a field to type one's own; values the
caller reads from the database arrive later as its `MoreChoices` message.

Every dialog returns its answer through `dismiss`, and the caller acts on it; dialogs
never touch the database. Texts that may quote customer data arrive as `Text` objects
already made safe, so nothing here parses markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from review_tui.widgets.safe_text import safe

T = TypeVar("T")


class ConfirmScreen(ModalScreen[bool]):
    """Press `key` to confirm; any other key cancels."""

    def __init__(self, title: str, lines: Sequence[Text], *, key: str = "y") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.lines = list(lines)
        self.key = key

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            for line in self.lines:
                yield Static(line)
            yield Static(
                Text(f"Press {self.key} to confirm, any other key to cancel.", style="dim")
            )

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        self.dismiss(event.key == self.key)


class PromptScreen(ModalScreen[T | None], Generic[T]):
    """One line of input, parsed by `parse`; a ValueError is shown and the prompt stays."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt.cancel")]

    def __init__(
        self, title: str, hint: str, parse: Callable[[str], T], *, value: str = ""
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.hint = hint
        self.parse = parse
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.hint, style="dim"))
            yield Input(value=self.value, id="prompt-input")
            yield Static("", id="prompt-error", classes="error", markup=False)

    @on(Input.Submitted, "#prompt-input")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            result = self.parse(event.value)
        except ValueError as exc:
            self.query_one("#prompt-error", Static).update(Text(str(exc)))
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one option (id, label); escape cancels."""

    BINDINGS = [Binding("escape,q", "cancel", "Cancel", id="choice.cancel")]

    def __init__(
        self, title: str, options: Sequence[tuple[str, Text]], *, current: str = ""
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.options = list(options)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield OptionList(*[Option(label, id=oid) for oid, label in self.options], id="choices")

    def on_mount(self) -> None:
        ids = [oid for oid, _ in self.options]
        if self.current in ids:
            self.query_one(OptionList).highlighted = ids.index(self.current)

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


TYPE_OWN = "type-own"  # the option that moves to the typing field


class PickOrTypeScreen(ModalScreen[T | None], Generic[T]):
    """Pick one offered value, or type one; both are parsed by `parse`.

    The list has the focus. A printable key (or ctrl+u) starts typing in the field below
    it, up from the field goes back to the list, and escape cancels. A ValueError from
    `parse` is shown and the dialog stays.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="pick.cancel")]

    class MoreChoices(Message):
        """Values found after the dialog opened, added above the typing option."""

        def __init__(self, choices: Sequence[tuple[str, Text]]) -> None:
            super().__init__()
            self.choices = list(choices)

    def __init__(
        self,
        title: str,
        hint: str,
        choices: Sequence[tuple[str, Text]],
        parse: Callable[[str], T],
        *,
        type_label: str = "type a pattern…",
    ) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.hint = hint
        self.choices = list(choices)
        self.parse = parse
        self.type_label = type_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield OptionList(*self._options(), id="choices")
            yield Static(Text(self.hint, style="dim"))
            yield Input(id="pick-input", select_on_focus=False)
            yield Static("", id="pick-error", classes="error", markup=False)

    def _options(self) -> list[Option]:
        options = [Option(label, id=oid) for oid, label in self.choices]
        options.append(Option(Text(self.type_label, style="italic"), id=TYPE_OWN))
        return options

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_pick_or_type_screen_more_choices(self, event: MoreChoices) -> None:
        known = {oid for oid, _ in self.choices}
        fresh = [(oid, label) for oid, label in event.choices if oid not in known]
        if not fresh:
            return
        self.choices.extend(fresh)
        options = self.query_one(OptionList)
        keep = options.highlighted
        options.set_options(self._options())
        options.highlighted = keep

    @on(OptionList.OptionSelected, "#choices")
    def picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id == TYPE_OWN:
            self.query_one(Input).focus()
            return
        self._answer(event.option.id or "")

    @on(Input.Submitted, "#pick-input")
    def typed(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer(event.value)

    def _answer(self, text: str) -> None:
        try:
            result = self.parse(text)
        except ValueError as exc:
            self.query_one("#pick-error", Static).update(Text(str(exc)))
            return
        self.dismiss(result)

    def on_key(self, event: events.Key) -> None:
        field = self.query_one(Input)
        if self.query_one(OptionList).has_focus:
            if event.key == "ctrl+u" or (event.is_printable and event.character):
                event.stop()
                field.focus()
                if event.key == "ctrl+u":
                    field.value = ""
                elif event.character:
                    field.insert_text_at_cursor(event.character)
        elif field.has_focus and event.key == "up":
            event.stop()
            self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConflictScreen(ModalScreen[str | None]):
    """Another rep saved first: show both texts; keep mine, take theirs, or cancel."""

    BINDINGS = [
        Binding("m", "choose('mine')", "Keep mine (overwrite)", id="conflict.mine"),
        Binding("t", "choose('theirs')", "Take theirs", id="conflict.theirs"),
        Binding("escape", "choose('')", "Cancel", id="conflict.cancel"),
    ]

    def __init__(self, *, who: str, mine: str, theirs: str) -> None:
        super().__init__(classes="dialog")
        self.who = who
        self.mine = mine
        self.theirs = theirs

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box wide"):
            yield Static(
                Text(f"{self.who} changed this draft while you were editing it.", style="bold"),
                classes="dialog-title",
            )
            with Horizontal(id="conflict-panes"):
                with VerticalScroll(classes="conflict-pane"):
                    yield Static(Text("Yours", style="bold underline"))
                    yield Static(safe(self.mine), id="conflict-mine")
                with VerticalScroll(classes="conflict-pane"):
                    yield Static(Text(f"Theirs ({self.who})", style="bold underline"))
                    yield Static(safe(self.theirs), id="conflict-theirs")
            yield Static(Text("m keep mine · t take theirs · escape cancel", style="dim"))

    def action_choose(self, which: str) -> None:
        self.dismiss(which or None)
