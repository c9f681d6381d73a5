"""The desk's questions: whom a ticket goes to, how urgent it is, and its new status.

The queue and the ticket screen both ask them, so they are built here once. Each is an
ordinary dialog (`dialogs`) that returns the rep's answer; the screen runs the storage
write (which audits it) in a worker and shows any refusal as a notification.

Assigning offers the desk's reps and teams from config, and takes a typed name too: a
rep new to the desk need not wait for a config change to get a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from sqlalchemy.engine import Engine

from review_tui.screens.dialogs import ChoiceScreen, PickOrTypeScreen
from review_tui.widgets.desk import priority_text
from review_tui.widgets.safe_text import safe_line
from storage.desk.hours import PRIORITIES, Desk
from storage.desk.owners import assign

NOBODY = "nobody"
TEAM = "team:"


@dataclass(frozen=True, slots=True)
class Handover:
    """Who gets the ticket: an owner (None: nobody), and a team (None: the team stays)."""

    owner: str | None
    team: str | None = None

    def apply(self, engine: Engine, ticket_id: int, *, actor: str, desk: Desk) -> None:
        """Write this hand-over (audited, checked against the desk's teams)."""
        assign(engine, ticket_id, actor=actor, owner=self.owner, team=self.team, desk=desk)

    def describe(self) -> str:
        if self.owner:
            return f"given to {self.owner}"
        return f"given to team {self.team}" if self.team else "now owned by nobody"


def parse_handover(text: str, desk: Desk) -> Handover:
    """`alice` → alice; `team:billing` → the team, nobody owning it; `nobody` → nobody."""
    text = text.strip()
    if not text:
        raise ValueError(f"type a rep's name, {TEAM}NAME, or {NOBODY}")
    if text.lower() == NOBODY:
        return Handover(None)
    if text.lower().startswith(TEAM):
        name = text[len(TEAM) :].strip()
        teams = [team for team, _members in desk.teams]
        if name not in teams:
            known = ", ".join(teams) or "none are configured"
            raise ValueError(f"no team called {name!r} (teams: {known})")
        return Handover(None, name)
    return Handover(text)


def assign_dialog(
    desk: Desk, *, actor: str, owner: str | None, team: str | None
) -> PickOrTypeScreen[Handover]:
    """Pick a rep or a team of the desk (or nobody), or type a rep's name."""
    reps = sorted({rep for _team, members in desk.teams for rep in members} | {actor})
    choices: list[tuple[str, Text]] = []
    for rep in reps:
        label = safe_line(rep, limit=60)
        teams = ", ".join(desk.teams_of(rep))
        label.append_text(safe_line(f"  {teams}" if teams else "", style="dim", limit=80))
        if rep == owner:
            label.append("  (owns it now)", style="italic")
        choices.append((rep, label))
    for name, _members in desk.teams:
        label = safe_line(f"{TEAM}{name}", limit=80)
        label.append("  the team, nobody in it owning it", style="dim")
        if name == team and not owner:
            label.append("  (has it now)", style="italic")
        choices.append((f"{TEAM}{name}", label))
    choices.append((NOBODY, Text("nobody  the ticket keeps its team", style="dim")))
    return PickOrTypeScreen(
        "Assign to",
        f"or type a rep's name, {TEAM}NAME, or {NOBODY} (↑ back to the list)",
        choices,
        lambda text: parse_handover(text, desk),
        type_label="type a name…",
    )


def priority_dialog(current: str | None) -> ChoiceScreen:
    return ChoiceScreen(
        "Priority (your choice sticks: the desk will not change it)",
        [(p, priority_text(p)) for p in PRIORITIES],
        current=current or "",
    )
