"""The model drafter's turn, taken after the pipeline's write transaction has committed.

With `[draft] backend = "openai"` a model may write a draft's body. That is a network
call of up to the drafter's timeout, and holding the database's write lock meanwhile
would stall the SMTP front door and every other worker. So the pipeline stores the
template's draft first, commits, and only then asks the model; the answer is written
in a short transaction of its own, and only if the draft is still exactly as the
pipeline left it (same body and state, not superseded, not edited or released by a
rep in the meantime). Otherwise the model's body is dropped and the template stands.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from gateway.conversation.context import Context
from nlp.drafting.compose import ThreadContext, evidence, incident_claim
from nlp.types import Analysis, DraftProposal, ParsedMessage, Suggestion
from storage.audit import audit
from storage.db import session_scope
from storage.models import Draft, DraftState, Ticket, utcnow

log = logging.getLogger(__name__)

# Draft states the pipeline leaves; any other means a rep has taken it on.
WAITING = (DraftState.DRAFTED, DraftState.NEEDS_TRIAGE)


@dataclass(frozen=True)
class ModelJob:
    """What the model needs, kept from the pipeline's transaction for after its commit."""

    draft_id: int
    version: int
    ticket_id: int
    parsed: ParsedMessage
    analysis: Analysis
    analysed: bool
    thread: ThreadContext
    proposal: DraftProposal
    passages: list[tuple[Suggestion, Any]]
    incident: bool


def model_draft(
    ctx: Context,
    parsed: ParsedMessage,
    analysis: Analysis,
    thread: ThreadContext,
    proposal: DraftProposal,
    passages: list[tuple[Suggestion, Any]],
    *,
    incident: bool = False,
) -> DraftProposal:
    """With a model drafter configured, let it write the body; keep it only if it is
    verified and claims no incident the operators have not declared. The template's
    proposal stands otherwise, and the brief says why."""
    drafter = ctx.drafter
    if drafter is None:
        return proposal
    texts = [analysis.reply_text, parsed.subject, *thread.texts, *thread.replies]
    texts += ["\n".join(line.text for line in f.evidence) for f in analysis.log_findings]
    quoted: list[tuple[str, str]] = []
    for _, article in passages:
        quoted.append((f"{article.path}: {article.title}", article.body))
    for s in proposal.suggestions:
        article = ctx.kb.get(s.article_id)
        if article is not None:
            quoted.append((article.title, article.body))
    sources = [*texts, *(body for _, body in quoted), proposal.body, parsed.from_name]
    result = drafter.draft(
        mail=analysis.reply_text or parsed.text,
        thread=list(thread.texts) + list(thread.replies),
        brief=proposal.brief,
        passages=quoted[:4],
        language=analysis.language or "en",
        customer_name=parsed.from_name or "",
        sources=sources,
    )
    brief = dict(proposal.brief)
    claim = incident_claim(result.body) if result.body and not incident else None
    if claim:
        brief["model"] = f"refused: it claims '{claim}' with no declared incident"
        return dataclasses.replace(proposal, brief=brief)
    if result.body:
        brief["decision"] = f"written by model {result.model}, verified against the mail"
        return dataclasses.replace(
            proposal, body=result.body, needs_triage=False, unfilled=(), brief=brief
        )
    brief["model"] = result.refused_reason
    return dataclasses.replace(proposal, brief=brief)


def run_model_job(ctx: Context, job: ModelJob) -> bool:
    """Ask the model for `job`'s draft and store its answer; True if the body changed."""
    try:
        return _store(ctx, job, _ask(ctx, job))
    except Exception:  # the template's draft is stored already: nothing is lost
        log.exception("the model's turn failed for draft %s; the template stands", job.draft_id)
        return False


def _ask(ctx: Context, job: ModelJob) -> DraftProposal:
    return model_draft(
        ctx,
        job.parsed,
        job.analysis,
        job.thread,
        job.proposal,
        job.passages,
        incident=job.incident,
    )


def _store(ctx: Context, job: ModelJob, proposal: DraftProposal) -> bool:
    with session_scope(ctx.engine) as session:
        draft = session.get(Draft, job.draft_id)
        if (
            draft is None
            or draft.state not in WAITING
            or draft.version != job.version
            or draft.updated_by is not None
            or draft.body != job.proposal.body
        ):
            log.info("draft %s changed while the model wrote; its answer is dropped", job.draft_id)
            return False
        result = job.analysis
        chosen = str(proposal.brief.get("intent") or result.intent)
        if job.analysed and chosen != result.intent and not proposal.needs_triage:
            # The classifier's best guess, confirmed by retrieval, is what the body answers.
            result = dataclasses.replace(result, intent=chosen, abstained=False)
            draft.intent = chosen
            ticket = session.get(Ticket, job.ticket_id)
            if ticket is not None:
                ticket.intent = chosen
                session.add(ticket)
        changed = proposal.body != draft.body
        draft.body = proposal.body
        draft.unfilled = list(proposal.unfilled)
        draft.state = DraftState.NEEDS_TRIAGE if proposal.needs_triage else DraftState.DRAFTED
        draft.evidence = {**(draft.evidence or {}), **evidence(result, proposal)}
        draft.updated_at = utcnow()
        draft.version += 1  # a rep who opened the template's draft is told it changed
        session.add(draft)
        audit(
            session,
            actor="pipeline",
            action="draft.model",
            entity_type="draft",
            entity_id=draft.id,
            details={"written": changed, "decision": proposal.brief.get("decision", "")},
            model_version=draft.model_version,
        )
    return changed
