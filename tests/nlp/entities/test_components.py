"""Each version is paired with the component named right before it."""

from __future__ import annotations

from nlp.entities.components import versions_with_components
from nlp.entities.extract import extract_entities


def paired(text: str) -> list[tuple[str, str]]:
    return versions_with_components(text, extract_entities(text))


def test_component_version_forms() -> None:
    text = (
        "We run PostgreSQL 14.7, openssl 3.0.2 behind nginx/1.25.3, and kubectl v1.29.1 "
        "talks to ingress-nginx 1.9.4 (affected by CVE-2023-44487)."
    )
    assert paired(text) == [
        ("PostgreSQL", "14.7"),
        ("openssl", "3.0.2"),
        ("nginx", "1.25.3"),
        ("kubectl", "1.29.1"),
        ("ingress-nginx", "1.9.4"),
    ]


def test_cve_sentence_pairs_the_version_with_its_own_component() -> None:
    found = dict(paired("Redis 7.2 is fine, but ingress-nginx 1.9.4 (CVE-2023-44487) is not."))
    assert found["ingress-nginx"] == "1.9.4"
    assert found["Redis"] == "7.2"


def test_from_to_keeps_the_component() -> None:
    assert paired("Upgrade openssl from 3.0.2 to 3.0.13 please") == [
        ("openssl", "3.0.2"),
        ("openssl", "3.0.13"),
    ]


def test_generic_noun_joins_the_name_before_it() -> None:
    assert paired("the Python SDK 4.2.0 fails") == [("Python SDK", "4.2.0")]


def test_version_after_prose_has_no_component() -> None:
    assert paired("We upgraded the client library to 2.31.0 yesterday.") == []


def test_version_prefix_word_is_dropped() -> None:
    assert paired("PostgreSQL version 14.2 here") == [("PostgreSQL", "14.2")]
