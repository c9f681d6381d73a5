"""The pipeline's last steps: rank knowledge, gather the ticket's thread, compose the
draft and its brief, and store them for a human.

A follow-up ("any update?") is drafted with its ticket's earlier mail: entities, log
findings, the intent and the language carry over, and our released replies are
passed on so the draft does not repeat what we already said. With `[draft] backend =
"openai"` a model may write the body instead, but only a body that passes the
verifier replaces the template's; the brief says what happened either way. The model
is asked after the pipeline's commit, holding no lock (`model_pass`).

A ticket has one open draft: a new one supersedes the earlier drafts still waiting, so
a customer who writes twice is answered once. Their text stays on their rows, and the
new draft's brief says when a rep had edited one. Mail from another sender on the
ticket never supersedes the customer's draft (see `thread`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from sqlmodel import Session

from gateway import headers as h
from gateway.conversation.context import Context
from gateway.conversation.incidents import incident_proposal, match_incident
from gateway.conversation.model_pass import ModelJob, model_draft
from gateway.conversation.thread import NEW_SENDER
from nlp.drafting.compose import DraftContext, ThreadContext, compose, evidence
from nlp.drafting.fill import clean_subject
from nlp.types import Analysis, DraftProposal, ParsedMessage, Suggestion
from storage import review as rv
from storage.audit import audit
from storage.models import Draft, DraftState, Message, Ticket, utcnow

log = logging.getLogger(__name__)

NO_MODEL = "none"
KB_QUERY_CHARS = 5000
# A new text shorter than this is a follow-up line ("any update?"); the ticket's first
# mail then says what the ticket is about.
SHORT_FOLLOWUP_CHARS = 160


def no_analysis() -> Analysis:
    """Stands in when no model is available: abstain, so a human triages."""
    return Analysis(
        model_version=NO_MODEL,
        intent="needs_triage",
        confidence=0.0,
        scores={},
        abstained=True,
        entities=(),
        reply_text="",
        notes=("no analysis model available",),
    )


def with_thread(analysis: Analysis, thread: ThreadContext, threshold: float) -> Analysis:
    """A follow-up too short or unsure to stand alone takes the ticket's intent and
    language; its own entities and logs stay first."""
    notes = list(analysis.notes)
    changes: dict[str, Any] = {}
    unsure = analysis.abstained or analysis.confidence < threshold
    short = len(analysis.reply_text.strip()) < SHORT_FOLLOWUP_CHARS
    if thread.intent and thread.intent != "needs_triage" and (unsure or short):
        if thread.intent != analysis.intent:
            notes.append(f"intent carried over from the ticket: {thread.intent}")
        changes.update(
            intent=thread.intent,
            confidence=max(thread.confidence, analysis.confidence),
            abstained=False,
        )
    if not analysis.language and thread.language:
        changes["language"] = thread.language
        notes.append(f"language taken from the ticket's earlier mail: {thread.language}")
    if not changes.get("language", analysis.language):
        changes["language"] = "en"
    if not changes:
        return analysis
    return dataclasses.replace(analysis, notes=tuple(notes), **changes)


def step_suggest(
    ctx: Context, parsed: ParsedMessage, analysis: Analysis | None, thread: ThreadContext
) -> tuple[list[Suggestion], list[tuple[Suggestion, Any]]]:
    """Rank KB articles and docs passages on the customer's new text: the subject once
    (without stacked Re:), the reply (quotes stripped) and the log failure templates; a
    short follow-up adds the ticket's first mail."""
    result = analysis or no_analysis()
    body = result.reply_text or parsed.text
    if len(body.strip()) < SHORT_FOLLOWUP_CHARS and thread.texts:
        body = f"{body}\n{thread.texts[0]}"
    templates = " ".join(f.template for f in (*result.log_findings, *thread.findings))
    query = f"{clean_subject(parsed.subject)}\n{body[:KB_QUERY_CHARS]}\n{templates}"
    suggestions = ctx.kb.rank(
        query,
        intent=None if result.abstained else result.intent,
        confidence=result.confidence,
        entity_labels=[e.label for e in result.entities],
        limit=max(ctx.config.kb.max_suggestions, 3),
    )
    passages = [
        (s, article)
        for s in ctx.docs.rank(query, limit=3, min_score=1.0)
        if (article := ctx.docs.get(s.article_id)) is not None
    ]
    return suggestions[: max(ctx.config.kb.max_suggestions, 1)], passages


def step_draft(
    ctx: Context,
    session: Session,
    message: Message,
    ticket: Ticket,
    parsed: ParsedMessage,
    analysis: Analysis | None,
    thread: ThreadContext,
    jobs: list[ModelJob] | None = None,
) -> Draft:
    """Store the ticket's new draft. With a model drafter and a `jobs` list, the draft
    keeps the template's body and the model's turn is appended to `jobs`, for the
    caller to run after its commit (`model_pass.run_model_job`); without a list the
    model is asked here."""
    result = with_thread(analysis or no_analysis(), thread, ctx.config.nlp.abstain_threshold)
    suggestions, passages = step_suggest(ctx, parsed, result, thread)
    if analysis is not None:
        ticket.intent = result.intent
        ticket.confidence = result.confidence
    signatures = [f.signature for f in result.log_findings if f.signature]
    if signatures and not ticket.signature:
        ticket.signature = signatures[0]
    ticket.updated_at = utcnow()
    session.add(ticket)
    articles = {s.article_id: a for s in suggestions if (a := ctx.kb.get(s.article_id))}
    draft_ctx = DraftContext(
        customer_name=parsed.from_name or ticket.customer_name or "",
        ticket_id=ticket.id,
        subject=parsed.subject or ticket.subject,
        suggestions=suggestions,
        articles=articles,
        passages=passages,
        thread=thread,
        min_confidence=ctx.config.nlp.abstain_threshold,
    )
    customer = ticket.customer_addr or parsed.from_addr or ""
    incident = match_incident(session, ticket, result, customer=customer)
    if incident is not None:
        draft_ctx = dataclasses.replace(draft_ctx, incident_declared=True)
    proposal = compose(result, draft_ctx)
    model_turn = False
    if incident is not None and incident.body is not None:
        proposal = incident_proposal(proposal, incident)
    elif ctx.drafter is not None and jobs is not None:
        model_turn = True  # after the commit: see gateway.conversation.model_pass
    else:
        proposal = model_draft(
            ctx, parsed, result, thread, proposal, passages, incident=incident is not None
        )
    chosen = str(proposal.brief.get("intent") or result.intent)
    if analysis is not None and chosen != result.intent and not proposal.needs_triage:
        # The classifier's best guess, confirmed by retrieval, is what the body answers.
        result = dataclasses.replace(result, intent=chosen, abstained=False)
        ticket.intent = chosen
    draft = Draft(
        ticket_id=int(ticket.id or 0),
        message_pk=int(message.id or 0),
        state=DraftState.NEEDS_TRIAGE if proposal.needs_triage else DraftState.DRAFTED,
        to_addr=reply_address(parsed) or message.envelope_from or "",
        subject=proposal.subject,
        body=proposal.body,
        intent=result.intent if analysis else None,
        confidence=result.confidence if analysis else None,
        model_version=result.model_version if analysis else None,
        article_id=proposal.article_id,
        suggestions=[_suggestion_json(s) for s in proposal.suggestions],
        unfilled=list(proposal.unfilled),
        rationale=proposal.rationale,
        evidence=_evidence(ctx, result, proposal),
    )
    session.add(draft)
    session.flush()
    supersede_earlier(session, message, draft)
    audit(
        session,
        actor="pipeline",
        action=f"draft.{draft.state}",
        entity_type="draft",
        entity_id=draft.id,
        details={
            "ticket": ticket.id,
            "signal": message.thread_signal,
            "article": proposal.article_id,
            "unfilled": list(proposal.unfilled),
            "decision": proposal.brief.get("decision", ""),
        },
        model_version=draft.model_version,
    )
    if model_turn and jobs is not None:
        jobs.append(
            ModelJob(
                draft_id=int(draft.id or 0),
                version=draft.version,
                ticket_id=int(ticket.id or 0),
                parsed=parsed,
                analysis=result,
                analysed=analysis is not None,
                thread=thread,
                proposal=proposal,
                passages=passages,
                incident=incident is not None,
            )
        )
    return draft


def supersede_earlier(session: Session, message: Message, draft: Draft) -> None:
    """Earlier open drafts of the ticket give way to `draft`; edited ones are named in its brief.

    The customer's mail supersedes every waiting draft but those answering another
    sender; another sender's mail supersedes only that sender's own earlier drafts.
    """
    earlier = [
        d
        for d, m in rv.open_drafts(session=session, ticket_id=draft.ticket_id)
        if d.id != draft.id
        and (m.thread_signal == NEW_SENDER) == (message.thread_signal == NEW_SENDER)
        and (message.thread_signal != NEW_SENDER or _same(m.from_addr, message.from_addr))
    ]
    edited = rv.supersede(session=session, drafts=earlier, by_draft=int(draft.id or 0),
                          actor="pipeline")  # fmt: skip
    if not edited:
        return
    data = dict(draft.evidence or {})
    brief = dict(data.get("brief") or {})
    kept = [
        f"draft #{e['draft_id']} edited by {e['edited_by']} was superseded: its text is kept"
        for e in edited
    ]
    brief["flags"] = [*(brief.get("flags") or []), *kept]
    data["brief"], data["superseded_edits"] = brief, edited
    draft.evidence = data
    session.add(draft)


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and (a or "").casefold() == (b or "").casefold()


def reply_address(parsed: ParsedMessage) -> str:
    """Where the customer asked replies to go: Reply-To if it holds an address, else From.

    The parsed Reply-To keeps each display name quoted (see `gateway.inbound.parse`), so
    an address spelled inside a name is never the one read here.
    """
    _, addr = h.split_address(h.clean(parsed.header("Reply-To")))
    return addr if "@" in addr else parsed.from_addr


def _suggestion_json(s: Suggestion) -> dict[str, Any]:
    return {
        "article_id": s.article_id,
        "title": s.title,
        "score": s.score,
        "matched_terms": list(s.matched_terms),
    }


def _evidence(ctx: Context, analysis: Analysis, proposal: DraftProposal) -> dict[str, Any]:
    data = evidence(analysis, proposal)
    if analysis.notes:
        data["notes"] = list(analysis.notes)
    if ctx.kb_error:
        data["kb_error"] = ctx.kb_error
    return data
