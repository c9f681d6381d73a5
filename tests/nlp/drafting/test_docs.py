"""A team's plain Markdown docs as passages: cut at headings, ranked, quoted with source."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.drafting.articles import KbError, parse_article
from nlp.drafting.compose import DraftContext, compose
from nlp.drafting.docs import first_sentences, load_docs, split_passages
from nlp.drafting.kb import KnowledgeBase
from nlp.types import Analysis, Suggestion

DOC = """Intro line about networking.

# Private endpoints

Private endpoints keep traffic inside your VPC. Create one under Networking → Private
endpoints and pick the subnet. DNS then resolves the service name to a private IP.

```
# not a heading inside code
curl https://db.internal
```

## Peering

VPC peering connects two networks; routes must not overlap.
"""


def test_markdown_is_cut_at_headings_and_keeps_its_source() -> None:
    passages = split_passages(DOC, source="networking/private.md")
    titles = [p.title for p in passages]
    assert titles == ["private", "Private endpoints", "Peering"]
    endpoint = passages[1]
    assert endpoint.id == "docs:networking/private.md#Private endpoints"
    assert "# not a heading inside code" in endpoint.body
    assert endpoint.path == "networking/private.md" and endpoint.variants == ()


def test_docs_folder_is_read_recursively_and_ranked(tmp_path: Path) -> None:
    (tmp_path / "networking").mkdir()
    (tmp_path / "networking" / "private.md").write_text(DOC, encoding="utf-8")
    (tmp_path / "billing.md").write_text("# Invoices\n\nInvoices are sent monthly.\n")
    index = KnowledgeBase(load_docs(tmp_path))
    best = index.rank("how do I create a private endpoint in my VPC?", limit=1)[0]
    assert best.article_id.endswith("#Private endpoints")
    with pytest.raises(KbError, match="does not exist"):
        load_docs(tmp_path / "missing")


def test_a_strong_passage_is_quoted_in_the_draft_with_its_source() -> None:
    article = parse_article(
        '+++\ntitle = "Networking"\nintents = ["config_help"]\n[[variants]]\nkind = "howto"\n'
        'reply = "Here is how to set it up."\n+++\nNetworking.',
        article_id="networking",
    )
    passage = split_passages(DOC, source="networking/private.md")[1]
    analysis = Analysis(
        model_version="t",
        intent="config_help",
        confidence=0.9,
        scores={"config_help": 0.9},
        abstained=False,
        entities=(),
        reply_text="How do I create a private endpoint?",
    )
    ctx = DraftContext(
        customer_name="Ana",
        ticket_id=3,
        subject="private endpoint",
        suggestions=(Suggestion("networking", "Networking", 9.0),),
        articles={"networking": article},
        passages=((Suggestion(passage.id, passage.title, 6.5), passage),),
    )
    draft = compose(analysis, ctx)
    assert "From our documentation (networking/private.md, “Private endpoints”):" in draft.body
    assert "> Private endpoints keep traffic inside your VPC." in draft.body
    assert draft.brief["passages"][1]["kind"] == "docs"


def test_first_sentences_cut_at_a_sentence_end() -> None:
    text = "One. " * 100
    assert first_sentences(text, limit=40).endswith(".")
    assert first_sentences("Short text") == "Short text"
