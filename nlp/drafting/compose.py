"""Compose the reply draft for one ticket, and the co-pilot brief a rep reads first.

The draft answers *this* customer: the article variant that fits the kind of mail
(`nlp.drafting.choose`), written in the customer's language, with the specifics they
gave repeated back, the key line of their log quoted with what it means, a question
only for the facts the answer needs and the mail, its attachments and the ticket's
earlier mail do not give, and an acknowledgement when the sender is urgent or upset.
What we already replied on the ticket is not said again.

When no article may write the body, the draft has none (`needs_triage`) and the brief
carries the asks, facts, log finding, ranked passages, missing facts and risk flags.
Nothing here invents a value (`nlp.drafting.fill`), and an outage draft never claims a
known incident unless the operators declared one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nlp.drafting.articles import Article
from nlp.drafting.brief import build_brief, merged_entities, pick_log_line
from nlp.drafting.choose import DEFAULT_MARGIN, Choice, choose_article
from nlp.drafting.docs import first_sentences
from nlp.drafting.fill import (
    entity_values,
    fill_template,
    reply_subject,
    ticket_ref,
    unfilled_marker,
)
from nlp.drafting.phrases import fact_request, phrase
from nlp.drafting.rationale import evidence, rationale
from nlp.drafting.reading import Reading, read_mail
from nlp.types import Analysis, DraftProposal, Entity, LogFinding, Suggestion

__all__ = [
    "DraftContext",
    "ThreadContext",
    "answer_body",
    "compose",
    "entity_values",
    "evidence",
    "fill_template",
    "reply_subject",
    "ticket_ref",
    "unfilled_marker",
]

DEFAULT_MIN_CONFIDENCE = 0.5
# Claims only an operator may make: a draft that says one while its ticket is attached
# to no declared incident is held back rather than sent as "we know, we're on it".
_INCIDENT_CLAIMS = re.compile(
    r"\b(?:we are aware|we're aware|known (?:issue|incident|outage)|engineers are working|"
    r"no action is needed|has been resolved|estamos al tanto|wir sind uns bewusst|"
    r"nous sommes au courant|estamos cientes)\b",
    re.IGNORECASE,
)


def incident_claim(text: str) -> str | None:
    """The words of `text` that only a declared incident allows ("we are aware"), if any."""
    found = _INCIDENT_CLAIMS.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True, slots=True)
class ThreadContext:
    """The ticket's earlier mail, as far as drafting needs it."""

    entities: tuple[Entity, ...] = ()
    findings: tuple[LogFinding, ...] = ()
    replies: tuple[str, ...] = ()  # our released replies, oldest first
    language: str = ""
    intent: str = ""
    confidence: float = 0.0
    texts: tuple[str, ...] = ()  # the customer's earlier new text, oldest first


@dataclass(frozen=True, slots=True)
class DraftContext:
    """Everything besides the analysis that the composer may use."""

    customer_name: str
    ticket_id: int | None
    subject: str
    suggestions: Sequence[Suggestion] = ()
    articles: Mapping[str, Article] = field(default_factory=dict)
    passages: Sequence[tuple[Suggestion, Article]] = ()
    thread: ThreadContext = ThreadContext()
    incident_declared: bool = False
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    margin: float = DEFAULT_MARGIN


def compose(analysis: Analysis, ctx: DraftContext) -> DraftProposal:
    """The draft (or none) and the brief for one ticket."""
    reading = read_mail(analysis.reply_text, ctx.subject, intent=analysis.intent)
    language = analysis.language or "en"
    confident = not analysis.abstained and analysis.confidence >= ctx.min_confidence
    guess, guess_score = max(
        analysis.scores.items(), key=lambda kv: kv[1], default=(analysis.intent, 0.0)
    )
    choice = choose_article(
        ctx.suggestions,
        ctx.articles,
        intent=analysis.intent,
        confident=confident,
        kind=reading.kind,
        language=language,
        margin=ctx.margin,
        confidence=analysis.confidence,
        guess=guess,
        guess_confidence=guess_score,
    )
    entities = merged_entities(analysis, ctx.thread)
    values = entity_values(entities)
    values["customer_name"] = ctx.customer_name.strip()
    values["ticket_ref"] = ticket_ref(ctx.ticket_id)
    body, decision = "", choice.reason
    unfilled: tuple[str, ...] = ()
    if choice.article is not None and choice.variant is not None:
        body, unfilled = _write(analysis, ctx, reading, choice, values)
        if not ctx.incident_declared:
            claim = incident_claim(body)
            if claim:
                decision = f"held back: the article claims '{claim}' with no declared incident"
                body, unfilled = "", ()
    needs_triage = not body
    brief = build_brief(analysis, ctx, reading, choice, entities, decision=decision)
    proposal = DraftProposal(
        subject=reply_subject(ctx.subject, ctx.ticket_id),
        body=body,
        needs_triage=needs_triage,
        rationale="",
        suggestions=tuple(ctx.suggestions),
        unfilled=unfilled,
        article_id=choice.article.id if choice.article and not needs_triage else None,
        language=language,
        brief=brief,
    )
    return _with_rationale(proposal, analysis)


def _with_rationale(proposal: DraftProposal, analysis: Analysis) -> DraftProposal:
    from dataclasses import replace

    text = rationale(analysis, proposal.suggestions, needs_triage=proposal.needs_triage)
    return replace(proposal, rationale=text)


def answer_body(
    article: Article, values: Mapping[str, str], *, language: str = "en", kind: str = ""
) -> tuple[str, tuple[str, ...]]:
    """Greeting, the filled answer, questions for missing facts and the closing: what a
    rep's "use this article" gets."""
    variant = article.variant(kind)
    if variant is None:
        raise ValueError(f"KB article {article.id!r} has no answer text")
    lang = language if language in variant.texts else "en"
    answer, unfilled = fill_template(variant.texts[lang], values)
    name = values.get("customer_name", "").strip()
    parts = [phrase(lang, "greeting", name=name) if name else phrase(lang, "greeting_anon"), answer]
    parts.append(_missing(lang, [f for f in article.needs if not values.get(f)]))
    parts.append(phrase(lang, "closing"))
    return "\n\n".join(p for p in parts if p), unfilled


def _missing(lang: str, missing: Sequence[str]) -> str:
    if not missing:
        return ""
    if len(missing) == 1:
        return phrase(lang, "missing_one", fact=fact_request(lang, missing[0]))
    items = "\n".join(f"- {fact_request(lang, f)}" for f in missing)
    return f"{phrase(lang, 'missing_many')}\n{items}"


def _write(
    analysis: Analysis,
    ctx: DraftContext,
    reading: Reading,
    choice: Choice,
    values: Mapping[str, str],
) -> tuple[str, tuple[str, ...]]:
    assert choice.article is not None and choice.variant is not None
    lang = choice.language
    name = values.get("customer_name", "")
    parts = [phrase(lang, "greeting", name=name) if name else phrase(lang, "greeting_anon")]
    if reading.urgent or reading.angry:
        parts.append(phrase(lang, "urgent"))
    if reading.followup and ctx.thread.replies:
        parts.append(phrase(lang, "followup"))
    answer, unfilled = fill_template(choice.variant.texts[lang], values)
    fresh = _not_said_before(answer, ctx.thread.replies)
    if fresh:
        parts.append(fresh)
    else:
        parts.append(phrase(lang, "still"))
    log = pick_log_line(analysis, ctx.thread, choice.article, lang)
    if log is not None:
        parts.append(
            phrase(lang, "log_intro", source=log.attachment, line=str(log.line_no))
            + f"\n\n    {log.text}"
            + (f"\n\n{phrase(lang, 'log_means', means=log.means)}" if log.means else "")
        )
    if lang == "en" and ctx.passages:
        top, passage = ctx.passages[0]
        if top.score >= 4.0:
            source = f"{passage.path}, “{passage.title}”"
            parts.append(f"{phrase(lang, 'docs_intro', source=source)}\n\n> "
                         f"{first_sentences(passage.body)}")  # fmt: skip
    if choice.variant.kind != "howto":
        # A how-to answer holds for everyone; the facts are needed to act on a case.
        parts.append(_missing(lang, [f for f in choice.article.needs if not values.get(f)]))
    parts.append(phrase(lang, "closing"))
    return "\n\n".join(p for p in parts if p.strip()), unfilled


def _norm(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _not_said_before(answer: str, replies: Sequence[str]) -> str:
    """The answer's paragraphs that no earlier reply of ours already contains."""
    if not replies:
        return answer
    said = " ".join(_norm(r) for r in replies)
    kept = [p for p in answer.split("\n\n") if _norm(p) and _norm(p) not in said]
    return "\n\n".join(kept)


def brief_json(proposal: DraftProposal) -> dict[str, Any]:
    return dict(proposal.brief)
