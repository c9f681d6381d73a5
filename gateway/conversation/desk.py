"""A customer's mail and the desk: route a new ticket, set its priority, start its clock.

Routing follows the `[[routing]]` rules, first match wins (intent, mailbox, sender
domain, an entity the mail names), and the ticket keeps the rule that decided so the
Why panel can show it. Priority comes from the intent (outages and security reports are
high), urgency the analysis found (an angry or "production down" sender: one step up)
and the customer's tier (`[desk] vip`: one step up); a rep's choice is never
overwritten. The reply clock starts at the mail's own time: first response for a new
ticket, next response when a customer writes again while we owe nothing. A pending or
solved ticket reopens when the customer writes (a closed one is never reopened; the
thread step starts a new ticket that links it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from gateway.config import Config
from gateway.config.desk import RoutingRule, parse_hours
from gateway.conversation.thread import NEW, TOKEN_IGNORED
from nlp.types import Analysis
from storage.desk.hours import PRIORITIES, Desk, Hours, SlaRule, parse_target
from storage.desk.lifecycle import set_status
from storage.models import Draft, Message, Ticket

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HIGH_INTENTS = frozenset({"outage_report", "security_report"})


def desk_from(config: Config) -> Desk:
    """The desk's rules in the form storage and the review UI use."""
    start, end = parse_hours(config.desk.business_hours)
    hours = Hours(
        zone=ZoneInfo(config.desk.timezone),
        start=start,
        end=end,
        days=frozenset(_DAYS.index(d) for d in config.desk.business_days),
    )
    sla = tuple(
        SlaRule(r.intent, r.priority, parse_target(r.first_response), parse_target(r.next_response))
        for r in config.sla
    )
    days = config.desk.solve_after_days
    return Desk(
        hours=hours,
        sla=sla,
        solve_after=timedelta(days=days) if days else None,
        vip=tuple(config.desk.vip),
        teams=tuple((t.name, tuple(t.members)) for t in config.teams),
    )


def route(
    rules: list[RoutingRule], ticket: Ticket, analysis: Analysis | None
) -> RoutingRule | None:
    """The first rule whose every set condition holds for this ticket."""
    domain = (ticket.customer_addr or "").rpartition("@")[2].lower()
    entities = {
        (e.label.lower(), e.text.strip().lower()) for e in (analysis.entities if analysis else ())
    }
    values = {text for _label, text in entities}
    for rule in rules:
        if rule.intent and (analysis is None or rule.intent != analysis.intent):
            continue
        if rule.mailbox and rule.mailbox != (ticket.mailbox or ""):
            continue
        if rule.sender_domain and rule.sender_domain.lower().lstrip("@") != domain:
            continue
        if rule.entity:
            label, _, value = rule.entity.lower().rpartition(":")
            if (label, value) not in entities if label else value not in values:
                continue
        return rule
    return None


def priority_for(intent: str | None, *, urgent: bool, vip: bool) -> tuple[str, str]:
    """(priority, why) from the intent, urgency cues and the customer's tier."""
    level = PRIORITIES.index("high" if intent in _HIGH_INTENTS else "normal")
    why = [f"intent {intent}" if intent in _HIGH_INTENTS else "default"]
    if urgent:
        level, why = max(level - 1, 0), [*why, "urgent wording"]
    if vip:
        level, why = max(level - 1, 0), [*why, "vip customer"]
    return PRIORITIES[level], ", ".join(why)


def on_customer_mail(
    session: Session,
    config: Config,
    ticket: Ticket,
    message: Message,
    analysis: Analysis | None,
    draft: Draft,
) -> None:
    """Route, prioritise and start or restart the reply clock for this mail."""
    desk = desk_from(config)
    new = message.thread_signal in (NEW, TOKEN_IGNORED)
    urgent = bool((draft.evidence or {}).get("brief", {}).get("urgent"))
    at: datetime = message.written_at or message.received_at
    intent = analysis.intent if analysis and not analysis.abstained else ticket.intent
    if new:
        rule = route(config.routing, ticket, analysis)
        if rule is not None:
            ticket.owner = rule.owner or None
            ticket.team = rule.team or None
            ticket.routed_by = f"[[routing]] {rule.name or _describe(rule)}"
    if ticket.priority_by is None or ticket.priority_by.startswith("desk"):
        vip = desk.is_vip(ticket.customer_addr or "")
        ticket.priority, why = priority_for(intent, urgent=urgent, vip=vip)
        ticket.priority_by = f"desk: {why}"[:200]
    if ticket.status in ("pending", "solved"):
        set_status(session, ticket, "open", actor="desk", reason="the customer wrote again")
    if ticket.waiting_since is None:
        ticket.waiting_since = at
        if ticket.first_response_at is None:
            ticket.first_response_due = desk.first_due(at, intent, ticket.priority)
            ticket.reply_due = ticket.first_response_due
        else:
            ticket.reply_due = desk.next_due(at, intent, ticket.priority)
    session.add(ticket)


def _describe(rule: RoutingRule) -> str:
    parts = [
        f"{key}={getattr(rule, key)}"
        for key in ("intent", "mailbox", "sender_domain", "entity")
        if getattr(rule, key)
    ]
    return " ".join(parts) or "default"
