"""Knowledge-base ranking: which articles (and docs passages) fit a ticket, and why.

Articles are read by `nlp.drafting.articles`; a team's plain Markdown docs become
passages in `nlp.drafting.docs`; both are ranked by the same index here.

Ranking is BM25 over title, tags and body, plus two explainable boosts: the ticket's
intent (weighted by the classifier's confidence) and entity labels the article declares
as triggers. Every score comes with the terms that produced it, because a rep must be
able to see why an article was suggested. A broken article is an error naming the file
and the problem, never a silently missing suggestion.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.drafting.articles import Article, KbError, load_articles, parse_article
from nlp.types import Suggestion

__all__ = ["Article", "KbError", "KnowledgeBase", "load_articles", "parse_article", "tokenize"]
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_]*(?:[.-][a-z0-9_]+)*")
_STOPWORD_TEXT = """a about after again all also am an and any are as at be been before being but by
    can could did do does doing for from had has have having he her here hers him his how
    i if in into is it its just me more most my no nor not of off on once only or other our
    out over own same she should so some such than that the their them then there these
    they this those through to too under until up very was we were what when where which
    while who why will with would you your yours hi hello thanks thank please regards best
    dear team support get got us i'm it's we're"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# BM25 parameters: the usual defaults; the corpus is small and documents are similar length.
_K1 = 1.2
_B = 0.75
INTENT_BOOST = 3.0
ENTITY_BOOST = 1.0
_TITLE_WEIGHT = 3
_TAG_WEIGHT = 2


def tokenize(text: str) -> list[str]:
    """Lower-cased content words with a light plural fold ("quotas" → "quota")."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        if tok in _STOPWORDS or len(tok) < 2:
            continue
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.append(tok)
    return out


@dataclass(frozen=True, slots=True)
class _Doc:
    article: Article
    tf: Counter[str]
    length: int


class KnowledgeBase:
    """An immutable, in-memory BM25 index over articles."""

    def __init__(self, articles: Iterable[Article]) -> None:
        self.articles = tuple(articles)
        self._by_id = {a.id: a for a in self.articles}
        self._docs = [self._index(a) for a in self.articles]
        total = sum(d.length for d in self._docs)
        self._avg_len = total / len(self._docs) if self._docs else 1.0
        df: Counter[str] = Counter()
        for doc in self._docs:
            df.update(doc.tf.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    @classmethod
    def from_dir(cls, directory: str | Path) -> KnowledgeBase:
        return cls(load_articles(directory))

    @staticmethod
    def _index(article: Article) -> _Doc:
        tokens = (
            tokenize(article.title) * _TITLE_WEIGHT
            + tokenize(" ".join(article.tags)) * _TAG_WEIGHT
            + tokenize(article.body)
        )
        return _Doc(article, Counter(tokens), len(tokens))

    def get(self, article_id: str) -> Article | None:
        return self._by_id.get(article_id)

    def rank(
        self,
        text: str,
        *,
        intent: str | None = None,
        confidence: float = 1.0,
        entity_labels: Sequence[str] = (),
        limit: int = 3,
        min_score: float = 0.5,
    ) -> list[Suggestion]:
        """Articles for a ticket, best first, each with its score and matched terms."""
        query = set(tokenize(text))
        labels = {label.upper() for label in entity_labels}
        scored: list[Suggestion] = []
        for doc in self._docs:
            score, terms = self._bm25(doc, query)
            if intent and intent in doc.article.intents:
                score += INTENT_BOOST * max(0.0, min(1.0, confidence))
                terms.insert(0, f"intent:{intent}")
            for label in sorted(labels & set(doc.article.entities)):
                score += ENTITY_BOOST
                terms.append(f"entity:{label}")
            if score >= min_score:
                scored.append(
                    Suggestion(doc.article.id, doc.article.title, round(score, 3), tuple(terms))
                )
        scored.sort(key=lambda s: (-s.score, s.article_id))
        return scored[:limit]

    def _bm25(self, doc: _Doc, query: set[str]) -> tuple[float, list[str]]:
        contributions: list[tuple[float, str]] = []
        norm = _K1 * (1 - _B + _B * doc.length / self._avg_len)
        for term in query:
            freq = doc.tf.get(term, 0)
            if not freq:
                continue
            part = self._idf[term] * freq * (_K1 + 1) / (freq + norm)
            contributions.append((part, term))
        contributions.sort(key=lambda c: (-c[0], c[1]))
        return sum(c[0] for c in contributions), [t for _, t in contributions[:8]]
