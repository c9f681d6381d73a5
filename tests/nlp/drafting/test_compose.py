"""Draft composition: placeholders come only from extracted values; the rationale names evidence."""

from __future__ import annotations

from nlp.drafting.compose import compose, evidence, fill_template, reply_subject
from nlp.types import Analysis, Entity, EvidenceLine, LogFinding, Suggestion

TEMPLATE = (
    "Hi {customer_name},\n\nAbout {ticket_ref}: we see {http_status} errors on {hostname} "
    "in {cloud_region}.\n"
)
SUGGESTIONS = (
    Suggestion("incident-5xx", "Errors during an incident", 9.4, ("intent:outage_report", "503")),
    Suggestion("disk-full", "Disk full", 1.2, ("error",)),
)
TEMPLATES = {"incident-5xx": TEMPLATE, "disk-full": "Disk {hostname}"}


def analysis(*, confidence: float = 0.91, abstained: bool = False) -> Analysis:
    return Analysis(
        model_version="test-1",
        intent="outage_report",
        confidence=confidence,
        scores={"outage_report": confidence},
        abstained=abstained,
        entities=(
            Entity("HTTP_STATUS", "HTTP 503", 20, 28),
            Entity("HOSTNAME", "api.acme.io", 40, 51),
            Entity("HOSTNAME", "edge-7.acme.io", 3, 17, source="nginx-error.log"),
        ),
        reply_text="",
        log_findings=(
            LogFinding(
                attachment="nginx-error.log",
                total_lines=200,
                error_lines=14,
                signature="abc123",
                template="upstream timed out <*>",
                evidence=(EvidenceLine(17, "2026/11/26 [error] upstream timed out"),),
            ),
        ),
    )


def test_placeholders_filled_from_entities_and_missing_value_flagged() -> None:
    draft = compose(
        analysis(),
        customer_name="Ada Lovelace",
        ticket_id=42,
        subject="API down",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    assert not draft.needs_triage
    assert draft.article_id == "incident-5xx"
    assert "Hi Ada Lovelace," in draft.body
    assert "About #42:" in draft.body
    assert "HTTP 503 errors on api.acme.io" in draft.body  # the body entity, not the log's
    # No region was extracted: it is flagged and left visible, never invented.
    assert "[[cloud_region?]]" in draft.body
    assert draft.unfilled == ("cloud_region",)
    assert draft.subject == "Re: API down [#42]"


def test_missing_customer_name_is_flagged_not_invented() -> None:
    draft = compose(
        analysis(),
        customer_name="",
        ticket_id=7,
        subject="x",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    assert draft.body.startswith("Hi [[customer_name?]],")
    assert "customer_name" in draft.unfilled


def test_rationale_names_the_real_evidence() -> None:
    draft = compose(
        analysis(),
        customer_name="Ada",
        ticket_id=42,
        subject="x",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    assert draft.rationale.startswith("outage_report 0.91 — ")
    assert "'HTTP 503' in body" in draft.rationale
    assert "'edge-7.acme.io' in nginx-error.log" in draft.rationale
    assert "14 ERROR lines in nginx-error.log" in draft.rationale
    assert "matched KB 'Errors during an incident'" in draft.rationale


def test_low_confidence_gets_suggestions_but_no_body() -> None:
    draft = compose(
        analysis(confidence=0.31),
        customer_name="Ada",
        ticket_id=42,
        subject="x",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    assert draft.needs_triage
    assert draft.body == ""
    assert draft.article_id is None
    assert [s.article_id for s in draft.suggestions] == ["incident-5xx", "disk-full"]
    assert "low confidence" in draft.rationale


def test_abstained_analysis_is_triage_even_with_high_score() -> None:
    draft = compose(
        analysis(confidence=0.95, abstained=True),
        customer_name="Ada",
        ticket_id=1,
        subject="x",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    assert draft.needs_triage and draft.body == ""
    assert draft.rationale.startswith("needs_triage (best guess outage_report 0.95)")


def test_abstained_rationale_names_the_top_scoring_guess() -> None:
    abstained = Analysis(
        model_version="m",
        intent="needs_triage",
        confidence=0.38,
        scores={"bug_report": 0.38, "performance": 0.31},
        abstained=True,
        entities=(),
        reply_text="",
    )
    draft = compose(
        abstained, customer_name="A", ticket_id=1, subject="x", suggestions=(), templates={}
    )
    assert draft.rationale.startswith("needs_triage (best guess bug_report 0.38) — ")


def test_weak_or_missing_article_means_triage() -> None:
    weak = (Suggestion("disk-full", "Disk full", 1.2),)
    for suggestions in ((), weak):
        draft = compose(
            analysis(),
            customer_name="Ada",
            ticket_id=1,
            subject="x",
            suggestions=suggestions,
            templates=TEMPLATES,
        )
        assert draft.needs_triage and draft.body == ""
    assert (
        "no KB article matched"
        in compose(
            analysis(), customer_name="A", ticket_id=1, subject="x", suggestions=(), templates={}
        ).rationale
    )


def test_reply_subject_does_not_stack_prefixes_or_tokens() -> None:
    assert reply_subject("RE: Re: AW: outage [#42]", 42) == "Re: outage [#42]"
    assert reply_subject("", 3) == "Re: (no subject) [#3]"


def test_fill_template_reports_each_missing_name_once() -> None:
    text, missing = fill_template("{a} {b} {a}", {"b": "B"})
    assert text == "[[a?]] B [[a?]]"
    assert missing == ("a",)


def test_evidence_keeps_offsets_log_lines_and_articles() -> None:
    a = analysis()
    draft = compose(
        a,
        customer_name="Ada",
        ticket_id=1,
        subject="x",
        suggestions=SUGGESTIONS,
        templates=TEMPLATES,
    )
    ev = evidence(a, draft)
    assert ev["entities"][0] == {
        "label": "HTTP_STATUS", "text": "HTTP 503", "start": 20, "end": 28, "source": "body"
    }  # fmt: skip
    assert ev["logs"][0]["lines"] == [
        {"line_no": 17, "text": "2026/11/26 [error] upstream timed out"}
    ]
    assert ev["articles"][0]["id"] == "incident-5xx"
    assert ev["unfilled"] == ["cloud_region"]
