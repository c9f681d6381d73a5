"""Which article may write the draft body — or why none may.

Retrieval follows words; the request is what matters. So an article writes the body
only when all of these hold, and otherwise the rep gets the brief and the ranked
passages instead of a confident wrong answer:

1. the intent is confident (not abstained, above the threshold), or the classifier's
   best guess (at least `AGREEMENT_CONFIDENCE`) is what the top-ranked article answers;
2. the article is tagged for that intent;
3. for a security report, the article has a `security` variant (never routine text);
4. it clearly beats the runner-up: its lead over every other article, relative to its
   own score, is at least `margin` (less, `SAME_INTENT_FACTOR` of it, over an article
   that answers the same intent); `DEFAULT_MARGIN` is fitted on half of the project's
   labelled draft set by `bench/draft_quality.py --fit`;
5. the variant for the mail's kind has a text in the customer's language.

Among articles tagged for the intent, one with a variant for the mail's kind (a grant
request → the `request` variant) gets a small, named bonus, because the kind of mail is
what separates "grant me a role" from "why do I get a 403".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nlp.drafting.articles import Article, Variant
from nlp.types import Suggestion

DEFAULT_MARGIN = 0.08
# Against a runner-up tagged for the same intent the lead needed is smaller.
SAME_INTENT_FACTOR = 0.35
KIND_BONUS = 1.5
# Above this intent confidence only articles of the same intent compete with the best.
STRONG_INTENT = 0.85
# Below the abstain threshold, a best guess at least this sure may still write when the
# top-ranked article answers that very intent.
AGREEMENT_CONFIDENCE = 0.3


@dataclass(frozen=True, slots=True)
class Choice:
    article: Article | None
    variant: Variant | None
    language: str
    reason: str
    score: float = 0.0
    lead: float = 0.0
    intent: str = ""  # the intent the body answers (a guess retrieval agreed with, too)


def choose_article(
    suggestions: Sequence[Suggestion],
    articles: Mapping[str, Article],
    *,
    intent: str,
    confident: bool,
    kind: str,
    language: str,
    margin: float = DEFAULT_MARGIN,
    confidence: float = 0.0,
    guess: str = "",
    guess_confidence: float = 0.0,
) -> Choice:
    """The article and variant that may write the body, with the reason either way."""
    agreed = ""
    if not confident:
        # A classifier just below its threshold whose best guess is also what retrieval
        # ranks first is two independent signals agreeing; anything less abstains.
        top = articles.get(suggestions[0].article_id) if suggestions else None
        if (
            guess
            and guess_confidence >= AGREEMENT_CONFIDENCE
            and top is not None
            and guess in top.intents
        ):
            intent, agreed = guess, f"; intent {guess} {guess_confidence:.2f} agrees with retrieval"
        else:
            return Choice(None, None, language, "intent uncertain: no body written")
    scored = []
    for s in suggestions:
        article = articles.get(s.article_id)
        if article is None:
            continue
        bonus = KIND_BONUS if any(v.kind == kind for v in article.variants) else 0.0
        scored.append((s.score + bonus, s, article))
    scored.sort(key=lambda t: (-t[0], t[1].article_id))
    tagged = [t for t in scored if intent in t[2].intents and t[2].variants]
    if kind == "security":
        # Whatever the classifier said (a hijacked login reads like a login problem),
        # only an article that escalates may answer a security report.
        tagged = [t for t in scored if any(v.kind == "security" for v in t[2].variants)]
        if not tagged:
            return Choice(None, None, language, "security report: no article with a security "
                          "variant; escalate by hand")  # fmt: skip
    if not tagged:
        return Choice(None, None, language, f"no article tagged for {intent} matched")
    best_score, best, article = tagged[0]
    lead, needed, runner = 1.0, margin, ""
    # A security report is answered only by an escalating article; others may not write
    # it, so they do not compete for it either.
    rivals = tagged if kind == "security" else scored
    for score, s, other in rivals:
        if s.article_id == best.article_id or best_score <= 0:
            continue
        # A runner-up that answers the same intent is a near miss, not a wrong topic.
        same = intent in other.intents
        if not same and confidence >= STRONG_INTENT:
            # A sure intent with words of another topic is normal ("a Terraform resource
            # for alert rules" is a feature request that talks like config help).
            continue
        this_needed = margin * SAME_INTENT_FACTOR if same else margin
        this_lead = (best_score - score) / best_score
        if this_lead - this_needed < lead - needed:
            lead, needed, runner = this_lead, this_needed, s.article_id
    if lead < needed:
        return Choice(
            None,
            None,
            language,
            f"'{best.article_id}' does not clearly beat '{runner}' "
            f"(lead {lead:.2f} < {needed:.2f}): no body written",
            best_score,
            lead,
        )
    variant = article.variant(kind)
    if variant is None:
        return Choice(None, None, language, f"'{article.id}' has no answer text")
    if language not in variant.texts:
        return Choice(
            None,
            None,
            language,
            f"'{article.id}' ({variant.kind}) has no {language} translation: "
            "no body written, reply by hand",
            best_score,
            lead,
        )
    return Choice(
        article,
        variant,
        language,
        f"'{article.id}' ({variant.kind}, {language}) tagged {intent}, lead {lead:.2f}{agreed}",
        best_score,
        lead,
        intent,
    )
