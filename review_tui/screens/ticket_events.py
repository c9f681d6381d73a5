"""Messages the ticket screen's thread workers post back to it.

Database work runs in worker threads that must not touch widgets; they report through
these messages. Each is named in the screen's namespace (`on_ticket_screen_saved`, ...)
wherever the code that posts it lives, so the screen's parts can sit in separate modules
and still reach the one handler.
"""

from __future__ import annotations

from textual.message import Message

from storage import review as rv

__all__ = [
    "Answered",
    "Changed",
    "Conflict",
    "Failed",
    "Finished",
    "LeaseChanged",
    "Loaded",
    "Moved",
    "Saved",
]


class Loaded(Message, namespace="ticket_screen"):
    def __init__(self, view: rv.TicketView, lease: rv.Lease, request: int) -> None:
        super().__init__()
        self.view = view
        self.lease = lease
        self.request = request


class LeaseChanged(Message, namespace="ticket_screen"):
    def __init__(self, lease: rv.Lease) -> None:
        super().__init__()
        self.lease = lease


class Saved(Message, namespace="ticket_screen"):
    def __init__(self, version: int, body: str, note: str) -> None:
        super().__init__()
        self.version = version
        self.body = body
        self.note = note


class Conflict(Message, namespace="ticket_screen"):
    def __init__(self, error: rv.VersionConflict) -> None:
        super().__init__()
        self.error = error


class Finished(Message, namespace="ticket_screen"):
    """The draft left the queue (released or discarded): go back."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Changed(Message, namespace="ticket_screen"):
    """A write changed the ticket: say so and reload it."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Moved(Message, namespace="ticket_screen"):
    """The draft moved to another ticket (merged or split off): hold that one instead."""

    def __init__(self, text: str, old_ticket: int) -> None:
        super().__init__()
        self.text = text
        self.old_ticket = old_ticket


class Failed(Message, namespace="ticket_screen"):
    def __init__(self, text: str, *, reload: bool = False) -> None:
        super().__init__()
        self.text = text
        self.reload = reload


class Answered(Message, namespace="ticket_screen"):
    """The release was refused: the ticket was answered after the draft; ask the rep."""

    def __init__(self, error: rv.AlreadyAnswered, version: int) -> None:
        super().__init__()
        self.error = error
        self.version = version
