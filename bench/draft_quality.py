# ruff: noqa: E501  (a report script: its table lines read best unbroken)
"""Draft quality on the project's labelled set, ours beside the plain composer, one run.

Each case of bench/data/draft_cases.jsonl (written for this project: asks, facts a good
reply repeats, facts that must not be asked for, acceptable articles, claims that must
not appear) is turned into a real MIME message, parsed by the gateway's parser and
analysed by the shipped analyser; its thread's earlier customer mail is analysed the
same way and our earlier replies are passed on, as the pipeline does. Then:

- **ours**: the pipeline's drafting (intent and language carried over from the
  thread, request-aware article choice, variants, needs, log quote, brief);
- **plain**: the top-ranked article's first English answer with values slotted in —
  what a draft was before: no choice rules, no language, no needs, no thread.

Printed per composer: acceptable article rate (of written drafts), asks covered,
facts repeated, drafts with invented values (the verifier), asked-for-given, wrong
language, unfilled placeholders, forbidden claims, abstain rate. `--fit` searches
the choice margin on the odd cases and reports it on the even ones.

    python bench/draft_quality.py [--cases FILE] [--fit] [--show ID]
"""

from __future__ import annotations

import argparse
import json
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import Config
from gateway.conversation.context import Context
from gateway.conversation.drafting import step_suggest, with_thread
from gateway.inbound.parse import parse_message
from nlp.analyse import Analyzer
from nlp.drafting.compose import DraftContext, ThreadContext, answer_body, compose
from nlp.drafting.fill import entity_values
from nlp.drafting.phrases import FACTS
from nlp.drafting.verify import verify
from nlp.types import DraftProposal, ParsedMessage

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "bench" / "data" / "draft_cases.jsonl"


def mime(case: dict[str, Any], body: str, html: str = "", attachments: Any = ()) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{case['from_name']} <{case['from_addr']}>"
    msg["To"] = "support@example.com"
    msg["Subject"] = case["subject"]
    msg["Message-ID"] = f"<{case['id']}-{abs(hash(body)) % 10**8}@bench.example>"
    if html:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body or " ")
    for att in attachments:
        msg.add_attachment(
            att["content"].encode(), maintype="text", subtype="plain", filename=att["name"]
        )
    return msg.as_bytes()


class Bench:
    def __init__(self) -> None:
        self.config = Config(base_dir=ROOT)
        self.ctx = Context(config=self.config, engine=None)  # type: ignore[arg-type]
        self.analyzer = Analyzer()

    def parsed(self, case: dict[str, Any]) -> ParsedMessage:
        raw = mime(case, case.get("body", ""), case.get("html", ""), case.get("attachments", []))
        return parse_message(raw)

    def thread(self, case: dict[str, Any]) -> ThreadContext:
        earlier = [m for m in case.get("thread", []) if m["direction"] == "in"]
        replies = tuple(m["body"] for m in case.get("thread", []) if m["direction"] == "out")
        if not earlier:
            return ThreadContext(replies=replies)
        analyses = [
            self.analyzer.analyse(parse_message(mime({**case, **m}, m["body"]))) for m in earlier
        ]
        first = analyses[0]
        return ThreadContext(
            entities=tuple(e for a in analyses for e in a.entities),
            findings=tuple(f for a in analyses for f in a.log_findings),
            replies=replies,
            language=first.language,
            intent="" if first.abstained else first.intent,
            confidence=first.confidence,
            texts=tuple(a.reply_text for a in analyses),
        )

    def draft(self, case: dict[str, Any], *, margin: float | None = None) -> tuple[Any, ...]:
        parsed = self.parsed(case)
        thread = self.thread(case)
        analysis = with_thread(
            self.analyzer.analyse(parsed), thread, self.config.nlp.abstain_threshold
        )
        suggestions, passages = step_suggest(self.ctx, parsed, analysis, thread)
        articles = {s.article_id: a for s in suggestions if (a := self.ctx.kb.get(s.article_id))}
        extra = {} if margin is None else {"margin": margin}
        ours = compose(
            analysis,
            DraftContext(
                customer_name=parsed.from_name,
                ticket_id=1,
                subject=parsed.subject,
                suggestions=suggestions,
                articles=articles,
                passages=passages,
                thread=thread,
                min_confidence=self.config.nlp.abstain_threshold,
                **extra,  # type: ignore[arg-type]
            ),
        )
        plain = ""
        plain_id = None
        if suggestions and not analysis.abstained:
            top = articles[suggestions[0].article_id]
            values = entity_values(analysis.entities)
            values["customer_name"] = parsed.from_name
            plain, _ = answer_body(top, values)
            plain = "\n".join(line for line in plain.split("\n") if "could you send" not in line)
            plain_id = top.id
        sources = [analysis.reply_text, parsed.text, parsed.html, parsed.subject, parsed.from_name]
        sources += [a["content"] for a in case.get("attachments", [])]
        sources += [m["body"] for m in case.get("thread", [])]
        sources += [a.body + a.reply + str(a.needs) for a in self.ctx.kb.articles]
        sources += [
            " ".join(t for v in a.variants for t in v.texts.values()) for a in self.ctx.kb.articles
        ]
        sources += [
            " ".join(p.means.values()) for a in self.ctx.kb.articles for p in a.log_patterns
        ]
        sources += [
            f"{f.attachment} {ln.line_no}" for f in analysis.log_findings for ln in f.evidence
        ]
        sources += [f"{f.attachment} {ln.line_no}" for f in thread.findings for ln in f.evidence]
        sources += [" ".join(v.values()) for v in FACTS.values()]
        return ours, (plain, plain_id), sources


def score(
    case: dict[str, Any], body: str, article: str | None, sources: list[str]
) -> dict[str, Any]:
    low = body.lower()
    written = bool(body.strip())
    lang = case["language"]
    asked = [
        f
        for f in case.get("given_facts", [])
        if FACTS.get(lang, FACTS["en"]).get(f, "\0").lower() in low
        or FACTS["en"].get(f, "\0").lower() in low
    ]
    from nlp.language import detect_language

    body_lang = detect_language(body, default=lang)[0] if written else lang
    asks = case.get("asks", [])
    return {
        "written": written,
        "acceptable": written and article in case.get("acceptable_articles", []),
        "asks": sum(any(w in low for w in a["covered_if"]) for a in asks) if written else 0,
        "asks_total": len(asks) if written else 0,
        "repeat": sum(f.lower() in low for f in case.get("repeat_facts", [])) if written else 0,
        "repeat_total": len(case.get("repeat_facts", [])) if written else 0,
        "invented": list(verify(body, sources)) if written else [],
        "asked_given": asked,
        "wrong_language": written and body_lang != lang,
        "unfilled": written and "[[" in body,
        "forbidden": [c for c in case.get("forbidden_claims", []) if c.lower() in low],
    }


def report(name: str, rows: list[dict[str, Any]]) -> None:
    n = len(rows)
    w = [r for r in rows if r["written"]] or [{}]
    nw = sum(r["written"] for r in rows)

    def pct(x: float, d: float) -> str:
        return f"{100 * x / d:5.1f}%" if d else "   - "

    print(f"\n== {name}: {n} mails, {nw} drafts written")
    print(f"  acceptable article (of written) {pct(sum(r['acceptable'] for r in rows), nw)}")
    print(
        f"  asks covered                    {pct(sum(r['asks'] for r in rows), sum(r['asks_total'] for r in rows))}"
    )
    print(
        f"  facts repeated                  {pct(sum(r['repeat'] for r in rows), sum(r['repeat_total'] for r in rows))}"
    )
    print(f"  drafts with invented values     {sum(bool(r['invented']) for r in rows)}")
    print(f"  asked for a given fact          {sum(bool(r['asked_given']) for r in rows)}")
    print(f"  wrong language                  {sum(r['wrong_language'] for r in rows)}")
    print(f"  unfilled placeholders           {pct(sum(r['unfilled'] for r in rows), nw)}")
    print(f"  forbidden claims                {sum(bool(r['forbidden']) for r in rows)}")
    print(f"  abstain                         {pct(n - nw, n)}")
    del w


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=str(CASES))
    parser.add_argument("--fit", action="store_true", help="search the choice margin")
    parser.add_argument("--show", action="append", default=[], help="print this case's drafts")
    parser.add_argument("--verbose", action="store_true", help="list every failing case")
    args = parser.parse_args()
    cases = [json.loads(line) for line in Path(args.cases).read_text().splitlines() if line]
    bench = Bench()
    if args.fit:
        for margin in (0.0, 0.04, 0.08, 0.12, 0.16, 0.24):
            for half, label in ((1, "fit (odd)"), (0, "held out (even)")):
                part = [c for i, c in enumerate(cases) if i % 2 == half]
                rows = []
                for case in part:
                    ours, _, sources = bench.draft(case, margin=margin)
                    rows.append(score(case, ours.body, ours.article_id, sources))
                report(f"margin {margin:.2f} {label}", rows)
        return 0
    ours_rows, plain_rows = [], []
    for case in cases:
        ours, (plain, plain_id), sources = bench.draft(case)
        assert isinstance(ours, DraftProposal)
        o = score(case, ours.body, ours.article_id, sources)
        ours_rows.append(o)
        plain_rows.append(score(case, plain, plain_id, sources))
        bad = (
            (o["written"] and not o["acceptable"])
            or o["invented"]
            or o["asked_given"]
            or o["wrong_language"]
            or o["forbidden"]
        )
        if case["id"] in args.show or (args.verbose and (bad or not o["written"])):
            print(f"\n--- {case['id']} ({case['intent']}, {case['language']}, {case['kind']})")
            print(f"    decision: {ours.brief.get('decision')}  article: {ours.article_id}")
            print(
                f"    problems: { {k: v for k, v in o.items() if v and k in ('invented', 'asked_given', 'wrong_language', 'forbidden')} }"
            )
            if case["id"] in args.show:
                print(ours.body)
    report("plain (top article, slotted)", plain_rows)
    report("ours", ours_rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
