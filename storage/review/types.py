"""The shared vocabulary of the review API: state sets, errors and the rows it returns.

It runs no queries, so every other review module can import it and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.models import Draft, DraftState, Message, Ticket

# Draft states a rep can still act on, and the subset a release accepts.
OPEN_STATES: tuple[str, ...] = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE, DraftState.STALE)
RELEASABLE_STATES: tuple[str, ...] = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)
QUEUE_STATES: tuple[str, ...] = (*OPEN_STATES, DraftState.FAILED)
# In the order `o` cycles them in the queue, from its default (due).
SORT_KEYS: tuple[str, ...] = (
    "due",
    "priority",
    "age",
    "sender",
    "subject",
    "intent",
    "confidence",
    "signature",
    "state",
    "owner",
)
# What the queue lists (see `storage.review.views`): "mine" and "all" are open drafts of
# open tickets; the others are tickets in that status, each with its latest draft.
VIEWS: tuple[str, ...] = ("mine", "all", "pending", "solved", "spam")
PATTERN_FIELDS: tuple[str, ...] = ("intent", "signature", "entity", "sender_domain")
MAX_TAGGED = 10_000


class ReviewError(ValueError):
    """A review act that cannot be done, worded for the rep who tried it."""


class VersionConflict(ReviewError):
    """Someone else saved the draft since it was loaded; carries both texts."""

    def __init__(
        self, *, draft_id: int, mine: str, theirs: str, current_version: int, updated_by: str | None
    ) -> None:
        who = updated_by or "someone else"
        super().__init__(f"draft {draft_id} was changed by {who} (now version {current_version})")
        self.draft_id = draft_id
        self.mine = mine
        self.theirs = theirs
        self.current_version = current_version
        self.updated_by = updated_by


class LeaseHeld(ReviewError):
    """Another rep holds the ticket; they must finish, or it must be taken over."""

    def __init__(self, *, ticket_id: int, holder: str, expires_at: datetime | None) -> None:
        super().__init__(f"ticket {ticket_id} is being worked on by {holder}")
        self.ticket_id = ticket_id
        self.holder = holder
        self.expires_at = expires_at


class ConfirmationMismatch(ReviewError):
    """The typed count does not match the number of messages to release."""


class PermissionDenied(ReviewError):
    """The act needs a role the actor does not have."""


class AlreadyAnswered(ReviewError):
    """The ticket got a released reply after this draft was written: a second one needs a yes."""

    def __init__(
        self, *, draft_id: int, ticket_id: int, released_by: str, released_at: datetime
    ) -> None:
        at = released_at.strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(
            f"ticket {ticket_id} was answered by {released_by} at {at}, after draft {draft_id} "
            "was written: releasing it sends the customer a second reply"
        )
        self.draft_id = draft_id
        self.ticket_id = ticket_id
        self.released_by = released_by
        self.released_at = released_at


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the queue shows; empty fields mean "any"."""

    states: tuple[str, ...] = OPEN_STATES
    intents: tuple[str, ...] = ()
    min_confidence: float | None = None
    max_confidence: float | None = None
    mailbox: str | None = None
    search: str = ""
    sort: str = "age"
    descending: bool = False
    # One of VIEWS, or None for every draft in `states` whatever its ticket's status.
    view: str | None = None
    # Whose "mine" it is: the rep and their teams (the UI fills these in, never saves them).
    me: str = ""
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueRow:
    draft_id: int
    ticket_id: int
    received_at: datetime
    sender: str
    subject: str  # the customer's
    reply_subject: str  # the draft's
    intent: str | None
    confidence: float | None
    signature: str | None
    state: str
    version: int
    lease_holder: str | None
    lease_expires_at: datetime | None
    mailbox: str | None
    # From the draft's brief: "urgent", "security", and the language when not English.
    flags: tuple[str, ...] = ()
    # The mail's own time (its Date, when believable): what the age column shows.
    written_at: datetime | None = None
    # The desk (storage.desk): who has the ticket, how urgent, when our reply is due.
    owner: str | None = None
    team: str | None = None
    priority: str | None = None
    reply_due: datetime | None = None
    status: str = "open"


@dataclass(frozen=True, slots=True)
class ConversationItem:
    message_pk: int
    direction: str
    received_at: datetime
    sender: str
    subject: str
    text: str
    attachments: tuple[dict[str, Any], ...]
    state: str  # the message's state, or for our replies the outbox (delivery) state
    # Our released replies (outbox rows) sit in the thread too: who released them.
    ours: bool = False
    released_by: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TicketView:
    """Everything the ticket screen shows for one draft, loaded in one go."""

    draft: Draft
    ticket: Ticket
    message: Message
    conversation: tuple[ConversationItem, ...]
    body_text: str
    entities: tuple[dict[str, Any], ...]
    log_findings: tuple[dict[str, Any], ...]
    suggestions: tuple[dict[str, Any], ...]
    # The rep whose correction set the current intent (None: the model's label stands).
    label_set_by: str | None = None


@dataclass(frozen=True, slots=True)
class ProblemRow:
    """A shunted or suppressed message or a failed/uncertain send, with the reason."""

    kind: str  # "shunted" | "suppressed" | "failed" | "uncertain"
    id: int
    at: datetime
    who: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    outbox_ids: tuple[int, ...]
    bulk_id: str | None


@dataclass(frozen=True, slots=True)
class BulkCandidate:
    """One tagged draft as the bulk review lists it, with why it may be excluded."""

    draft_id: int
    ticket_id: int
    to_addr: str
    subject: str
    body: str
    version: int
    problems: tuple[str, ...] = field(default=())
    # The customer's From address; differs from `to_addr` when the reply goes to Reply-To.
    from_addr: str = ""

    @property
    def via_reply_to(self) -> bool:
        return bool(self.from_addr) and self.from_addr.casefold() != self.to_addr.casefold()

    @property
    def eligible(self) -> bool:
        return not self.problems
