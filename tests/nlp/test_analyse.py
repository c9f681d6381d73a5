"""The analyse entry point: reply, entities with sources and offsets, logs, intent, garbage."""

from __future__ import annotations

import gzip
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from nlp.analyse import Analyzer, AnalyzerSettings, _cached, analyse
from nlp.entities.extract import EntitySettingsError
from nlp.intent.model import IntentModel, IntentModelError, IntentPrediction
from nlp.logs.mining import evidence_text
from nlp.types import Analysis, Attachment, ParsedMessage

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeIntentModel:
    """Records what it was asked; answers a fixed label, or fails when told to."""

    version: str = "fake-7"
    labels: tuple[str, ...] = ("outage_report", "billing")
    seen: list[str] = field(default_factory=list)
    fail_on: str = ""
    batch_calls: int = 0

    def predict(self, text: str, *, threshold: float) -> IntentPrediction:
        self.seen.append(text)
        if self.fail_on and self.fail_on in text:
            raise ValueError("model exploded")
        confidence = 0.8
        abstained = confidence < threshold
        label = "needs_triage" if abstained else "outage_report"
        return IntentPrediction(
            label, confidence, {"outage_report": 0.8, "billing": 0.2}, abstained
        )

    def predict_many(self, texts: list[str], *, threshold: float) -> list[IntentPrediction]:
        self.batch_calls += 1
        return [self.predict(t, threshold=threshold) for t in texts]


def message(
    text: str = "", *, subject: str = "Help", attachments: tuple[Attachment, ...] = ()
) -> ParsedMessage:
    return ParsedMessage(
        message_id="<m1@example.com>",
        from_addr="priya@customer.example",
        from_name="Priya Raman",
        to=("support@example.com",),
        cc=(),
        subject=subject,
        date=None,
        in_reply_to=None,
        references=(),
        text=text,
        attachments=attachments,
    )


def log_attachment(name: str = "checkout_b.log.gz") -> Attachment:
    data = gzip.compress((LOGS / "checkout_b.log").read_bytes())
    return Attachment(name=name, content_type="application/gzip", size=len(data), data=data)


BODY = """Hi,

since 09:00 the checkout in us-east-1 answers HTTP 503 and api.shop.example.com times out.

Thanks,
Priya

On Wed, Nov 25, 2026 at 4:12 PM Support <support@example.com> wrote:
> Is 10.9.9.9 your egress IP?
"""


def test_entities_come_from_reply_and_attachment_with_sources_and_offsets() -> None:
    model = FakeIntentModel()
    analysis = Analyzer(intent_model=model).analyse(message(BODY, attachments=(log_attachment(),)))
    body = [e for e in analysis.entities if e.source == "body"]
    logs = [e for e in analysis.entities if e.source == "checkout_b.log.gz"]
    assert {(e.label, e.text) for e in body} == {
        ("CLOUD_REGION", "us-east-1"),
        ("HTTP_STATUS", "503"),
        ("HOSTNAME", "api.shop.example.com"),
    }
    for entity in body:
        assert analysis.reply_text[entity.start : entity.end] == entity.text
    (finding,) = analysis.log_findings
    evidence = evidence_text(finding)
    assert {"IP", "TIMESTAMP", "EXCEPTION"} <= {e.label for e in logs}
    for entity in logs:
        assert evidence[entity.start : entity.end] == entity.text
    # The quoted history (support's address, 10.9.9.9) is not evidence of this ticket.
    assert all(e.text not in ("10.9.9.9", "support@example.com") for e in analysis.entities)


def test_entities_are_deduplicated_per_source() -> None:
    text = "db1.example.com is down. DB1.example.com still down. 10.0.0.1 and 10.0.0.1"
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(message(text))
    assert [(e.label, e.text, e.start) for e in analysis.entities] == [
        ("HOSTNAME", "db1.example.com", 0),
        ("IP", "10.0.0.1", 53),
    ]


def test_reply_text_excludes_quotes_and_signature() -> None:
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(message(BODY))
    assert analysis.reply_text.startswith("Hi,\n\nsince 09:00")
    assert analysis.reply_text.endswith("times out.")


def test_all_quoted_mail_uses_the_full_text_for_entities() -> None:
    text = "> Your instance 10.1.2.3 was restarted.\n"
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(message(text))
    assert analysis.reply_text == text
    assert [e.text for e in analysis.entities] == ["10.1.2.3"]


def test_intent_sees_subject_reply_and_log_digest_but_not_the_quote() -> None:
    model = FakeIntentModel()
    analysis = Analyzer(intent_model=model).analyse(
        message(BODY, subject="Checkout down", attachments=(log_attachment(),))
    )
    (text,) = model.seen
    assert text.startswith("Checkout down\n\nHi,")
    assert "Log errors: " in text and "refused" in text and "<*>" not in text
    assert "egress" not in text
    assert (analysis.intent, analysis.confidence, analysis.abstained) == (
        "outage_report",
        0.8,
        False,
    )
    assert analysis.scores == {"outage_report": 0.8, "billing": 0.2}


def test_threshold_is_passed_to_the_model() -> None:
    analyzer = Analyzer(AnalyzerSettings(abstain_threshold=0.9), intent_model=FakeIntentModel())
    analysis = analyzer.analyse(message("Our invoice is wrong."))
    assert (analysis.intent, analysis.abstained) == ("needs_triage", True)


def test_model_version_combines_model_and_rules() -> None:
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(message("hello"))
    assert analysis.model_version.startswith("fake-7+ent-")
    assert "+log-" in analysis.model_version and "+quotes-" in analysis.model_version


def test_model_failure_on_one_text_abstains_with_a_note() -> None:
    model = FakeIntentModel(fail_on="BOOM")
    results = Analyzer(intent_model=model).analyse_many([message("fine"), message("BOOM here")])
    assert [r.intent for r in results] == ["outage_report", "needs_triage"]
    assert results[1].abstained and results[1].confidence == 0.0
    assert any("intent model failed" in n for n in results[1].notes)
    assert results[0].notes == ()


def test_analyse_many_uses_one_batch() -> None:
    model = FakeIntentModel()
    results = Analyzer(intent_model=model).analyse_many([message("a"), message("b"), message("c")])
    assert len(results) == 3 and model.batch_calls == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x00\x00",
        "\x1b[2J\x1b[31mERROR\x1b[0m on 10.0.0.1\x07",
        "\ud800 lone surrogate",
        "x" * 5_000_000,
        "> " * 100_000,
    ],
)
def test_garbage_never_raises(text: str) -> None:
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(
        message(text, subject="\x00\x1b[1m")
    )
    assert isinstance(analysis, Analysis)
    assert len(analysis.reply_text) <= 100_000
    assert "\x00" not in analysis.reply_text and "\x1b" not in analysis.reply_text


def test_huge_body_is_cut_with_a_note() -> None:
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(message("word " * 1_000_000))
    assert any("cut to the first 100,000 characters" in n for n in analysis.notes)


def test_escapes_are_reported_and_offsets_still_match() -> None:
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(
        message("\x1b[31mhost db-9.prod.internal\x1b[0m fails")
    )
    assert any("control characters" in n for n in analysis.notes)
    (entity,) = analysis.entities
    assert analysis.reply_text[entity.start : entity.end] == "db-9.prod.internal"


def test_corrupt_attachment_is_a_finding_not_an_error() -> None:
    bad = Attachment("broken.log.gz", "application/gzip", 12, b"\x1f\x8b\x08garbage!")
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(
        message("see log", attachments=(bad,))
    )
    (finding,) = analysis.log_findings
    assert "corrupt gzip" in finding.note


def test_bad_operator_pattern_fails_at_construction() -> None:
    with pytest.raises(EntitySettingsError):
        Analyzer(AnalyzerSettings(account_id_patterns=("(",)), intent_model=FakeIntentModel())


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    analyzer = Analyzer(AnalyzerSettings(model_dir=str(tmp_path / "nope")))
    with pytest.raises(IntentModelError, match="does not exist"):
        analyzer.analyse(message("hello"))


def test_shipped_model_end_to_end() -> None:
    model = IntentModel.load()
    analysis = Analyzer().analyse(
        message(BODY, subject="Checkout down", attachments=(log_attachment(),))
    )
    assert analysis.model_version.startswith(model.version + "+")
    assert analysis.intent in (*model.labels, "needs_triage")
    assert 0.0 <= analysis.confidence <= 1.0
    assert set(analysis.scores) == set(model.labels)


def test_package_exports_analyse_lazily() -> None:
    code = (
        "import sys, nlp.types, nlp\n"
        "assert 'spacy' not in sys.modules and 'drain3' not in sys.modules, 'eager import'\n"
        "assert callable(nlp.analyse) and nlp.AnalyzerSettings().abstain_threshold == 0.5\n"
        "import nlp.analyse as module\n"
        "assert callable(nlp.analyse) and module.Analyzer is nlp.Analyzer\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_module_level_analyse_reuses_one_analyzer() -> None:
    settings = AnalyzerSettings(abstain_threshold=0.99)
    first = analyse(message("Our API returns 500."), settings)
    second = analyse(message("Our API returns 500."), settings)
    assert first == second

    assert _cached(settings) is _cached(settings)


def test_html_only_mail_is_analysed_from_its_html() -> None:
    parsed = message("")
    html = "<p>Our API at 10.4.4.4 returns HTTP 500.</p><blockquote>old 10.5.5.5</blockquote>"
    analysis = Analyzer(intent_model=FakeIntentModel()).analyse(replace(parsed, html=html))
    assert analysis.reply_text == "Our API at 10.4.4.4 returns HTTP 500."
    assert [e.text for e in analysis.entities] == ["10.4.4.4", "500"]
    assert any("HTML part" in n for n in analysis.notes)
