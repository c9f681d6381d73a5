"""Reading a customer's new text: asks, kind of mail and flags, in the desk languages."""

from __future__ import annotations

import pytest

from nlp.drafting.reading import read_mail


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Please grant bob@acme.io the deploy role.", "request"),
        ("Could you raise our vCPU quota to 96?", "request"),
        ("kubectl get pods returns 403 Forbidden since this morning.", "failure"),
        ("How do I give a teammate read-only access?", "howto"),
        ("¿Pueden aumentar la cuota de vCPU a 96, por favor?", "request"),
        ("Seit heute funktioniert der Login nicht, Fehler 500.", "failure"),
        ("Comment puis-je exporter mes factures ?", "howto"),
        (
            "Our API token leaked on GitHub and someone signed in from an unknown device.",
            "security",
        ),
    ],
)
def test_kind_of_mail(text: str, kind: str) -> None:
    assert read_mail(text).kind == kind


def test_asks_are_whole_sentences_even_when_the_mail_wraps_lines() -> None:
    text = "We run in eu-west-1. Can you check what\nthis session did in account acct-2088? Thanks."
    assert read_mail(text).asks == ("Can you check what this session did in account acct-2088?",)


def test_flags_name_the_words_that_raised_them() -> None:
    reading = read_mail(
        "URGENT!!! Production down since 09:00, this is unacceptable. Any update?",
        intent="outage_report",
    )
    assert "urgent" in reading.urgent and "!!!" in reading.urgent
    assert reading.angry == ("unacceptable",)
    assert reading.followup == ("any update",)
    calm = read_mail("Could you tell me how invoices are numbered?", intent="billing")
    assert calm.urgent == () and calm.angry == () and calm.security == ()


def test_a_gdpr_request_is_flagged_as_legal() -> None:
    assert read_mail("Please delete all our data under GDPR.").legal == (
        "delete all our data",
        "gdpr",
    )
