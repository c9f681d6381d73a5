"""The verifier: every value a model writes must come from the mail, thread or passages."""

from __future__ import annotations

import pytest

from nlp.drafting.verify import find_values, placeholders, reasons, unsourced, verify

SOURCE = "Our app on db-1.internal.example.com cannot reach the API."


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("db-2.internal.example.com", "hostname"),
        ("10.0.0.9", "ip"),
        ("10.20.0.0/16", "ip"),
        ("fe80::1", "ip"),
        ("https://status.example.com/incidents/42", "url"),
        ("ops@example.com", "email"),
        ("acct-123", "id"),
        ("acct_x9", "id"),
        ("org-acme", "id"),
        ("prj-7f3a", "id"),
        ("123e4567-e89b-12d3-a456-426614174000", "uuid"),
        ("#4711", "ticket"),
        ("v1.2.3", "version"),
        ("2.31.0", "version"),
        ("14.7", "number"),
        ("42", "number"),
        ("3.5", "number"),
        ("1,000", "number"),
        ("500ms", "number"),
        ("3 GB", "number"),
        ("2024-03-12", "date"),
        ("12/03/2024", "date"),
        ("12 March 2024", "date"),
        ("2024-03-12T08:15:00Z", "datetime"),
        ("12:03Z", "time"),
        ("$12.50", "price"),
        ("12,50 €", "price"),
        ("EUR 40", "price"),
    ],
)
def test_each_kind_of_value_is_caught_when_unsourced(value: str, kind: str) -> None:
    draft = f"Hello,\n\nWe checked {value} for you.\n"
    assert verify(draft, [SOURCE]) == (value,)
    (finding,) = unsourced(draft, [SOURCE])
    assert finding.kind == kind


def test_values_present_in_sources_pass_case_and_space_insensitively() -> None:
    sources = [
        "From DB-1.Internal.Example.com we see 10.0.0.9 timing out after 500  ms.",
        "Account ACCT-123 on v14.7, invoice of $12.50 on 2024-03-12; see https://x.example.com/a.",
    ]
    draft = (
        "Thanks! db-1.internal.example.com reaches 10.0.0.9 only after 500 ms; "
        "acct-123 runs 14.7, and the $12.50 invoice of 2024-03-12 is at https://x.example.com/a."
    )
    assert verify(draft, sources) == ()


def test_numbered_list_markers_are_not_values() -> None:
    draft = "Please:\n1. Restart the agent.\n2) Send us the log.\n  3. Reply here.\n"
    assert verify(draft, []) == ()


def test_numbers_in_prose_are_values_even_when_small() -> None:
    assert verify("It failed 2 times since step 1.", []) == ("2", "1")


def test_a_value_inside_a_longer_source_token_is_not_found() -> None:
    sources = ["hosts 10.0.0.99 and api.eu.example.com, account acct-1234, 1,000 calls, v1.2.30"]
    draft = "We saw 10.0.0.9, example.com, acct-123, 1 call and v1.2.3."
    assert verify(draft, sources) == ("10.0.0.9", "example.com", "acct-123", "1", "v1.2.3")


def test_token_boundaries_allow_punctuation_ports_and_paths() -> None:
    sources = ["Connect to (10.0.0.9:5432) or https://db.example.com/health, then 30 s."]
    draft = "Use 10.0.0.9, port 5432, host db.example.com and wait 30 seconds? No: 30 s."
    assert verify(draft, sources) == ("30 seconds",)


def test_the_same_value_in_another_spelling_counts_as_found() -> None:
    sources = [
        "pg 14.7 since March 12, 2024; disk 3GB; log at 2024-05-01T09:30:12Z",
    ]
    draft = "On v14.7 since 12 March 2024, with 3 GB, the 09:30 entry of 2024-05-01."
    assert verify(draft, sources) == ()


def test_month_names_in_another_desk_language_match_the_source_date() -> None:
    assert verify("Desde el 12 de marzo de 2024.", ["Since March 12, 2024."]) == ()
    assert verify("Seit dem 13. März.", ["Since March 12, 2024."]) == ("13. März",)


def test_each_missing_value_is_named_once_in_reading_order() -> None:
    draft = "Route 10.0.0.9 via 10.0.0.9 to acct-9 for €5."
    assert verify(draft, ["no values here"]) == ("10.0.0.9", "acct-9", "€5")
    assert reasons(unsourced(draft, [])) == (
        "ip 10.0.0.9 is in no source",
        "id acct-9 is in no source",
        "price €5 is in no source",
    )


def test_find_values_keeps_urls_and_emails_whole() -> None:
    found = find_values("See https://docs.example.com/a/b?x=1. Or write to ops@example.com.")
    assert [(f.kind, f.value) for f in found] == [
        ("url", "https://docs.example.com/a/b?x=1"),
        ("email", "ops@example.com"),
    ]


def test_digits_inside_odd_tokens_are_still_checked() -> None:
    assert verify("Use x86_64 and HTTP/2.", []) == ("x86_64", "2")


def test_prose_without_values_passes() -> None:
    assert verify("Thanks for the details, e.g. the log. We will look into it.", []) == ()


def test_placeholders_are_found_but_markdown_links_are_not() -> None:
    text = "Hi [Name], see [the guide](https://x.example.com), use <api key> or {{ticket}}."
    assert placeholders(text) == ("[Name]", "<api key>", "{{ticket}}")


def test_list_markers_in_a_source_vouch_for_no_number() -> None:
    source = "Steps:\n1. Open the console.\n2. Rotate the key.\n"
    assert verify("Retry 2 times.", [source]) == ("2",)
