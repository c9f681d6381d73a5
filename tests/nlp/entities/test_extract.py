"""Entity extraction: every label, the false-positive traps, offsets, settings, dedupe."""

from __future__ import annotations

import pytest

from nlp.entities.extract import (
    EntitySettings,
    EntitySettingsError,
    dedupe,
    extract_entities,
    normalise,
)
from nlp.types import Entity

POSITIVES: list[tuple[str, str, str]] = [
    ("HOSTNAME", "replica db-2.eu.example.net lags", "db-2.eu.example.net"),
    ("HOSTNAME", "the host web01.rack3.dc2 is down", "web01.rack3.dc2"),
    ("HOSTNAME", "see status.example.io.", "status.example.io"),
    ("IP", "connect to 10.0.12.7:5432 failed", "10.0.12.7"),
    ("IP", "the IPv6 address 2001:db8:85a3::8a2e:370:7334 flaps", "2001:db8:85a3::8a2e:370:7334"),
    ("IP", "listening on ::1 only", "::1"),
    (
        "URL",
        "open https://status.example.com/incidents/42?x=1, please",
        "https://status.example.com/incidents/42?x=1",
    ),
    ("EMAIL", "write to ops-team@customer.example.org today", "ops-team@customer.example.org"),
    ("HTTP_STATUS", "the API returns HTTP 503 since noon", "503"),
    ("HTTP_STATUS", "the webhook returned 429 twice", "429"),
    ("HTTP_STATUS", "it returns HTTP 500.", "500"),
    ("HTTP_STATUS", "nginx logged status=502 for it", "502"),
    ("HTTP_STATUS", "we get 502 Bad Gateway from the edge", "502"),
    ("HTTP_STATUS", '"GET /health HTTP/1.1" 500 12', "500"),
    ("ERROR_CODE", "browser says ERR_TLS_CERT_EXPIRED", "ERR_TLS_CERT_EXPIRED"),
    ("ERROR_CODE", "query failed: ORA-00942 table missing", "ORA-00942"),
    ("ERROR_CODE", "socket closed with ECONNRESET", "ECONNRESET"),
    ("ERROR_CODE", "container ended with exit code 137", "exit code 137"),
    ("ERROR_CODE", "reason: OOMKilled", "OOMKilled"),
    ("ERROR_CODE", "aborted with SQLSTATE 40001 again", "SQLSTATE 40001"),
    ("VERSION", "we upgraded to v1.2.3 yesterday", "v1.2.3"),
    ("VERSION", "PostgreSQL version 14.2 here", "version 14.2"),
    ("VERSION", "Server: nginx/1.25.3", "nginx/1.25.3"),
    ("VERSION", "client library 2.31.0 is used", "2.31.0"),
    ("K8S_RESOURCE", "pod/api-7d9f8b6c5-x2klp restarted", "pod/api-7d9f8b6c5-x2klp"),
    ("K8S_RESOURCE", "scale deployment/checkout to 3", "deployment/checkout"),
    ("K8S_RESOURCE", "in namespace/payments only", "namespace/payments"),
    ("CLOUD_REGION", "our bucket is in us-east-1", "us-east-1"),
    ("CLOUD_REGION", "the GKE cluster in europe-west4 is slow", "europe-west4"),
    ("CLOUD_REGION", "Azure westeurope and eastus2 both", "westeurope"),
    ("CLOUD_REGION", "Azure westeurope and eastus2 both", "eastus2"),
    ("ACCOUNT_ID", "customer acct_9F8a7b6C5d asked", "acct_9F8a7b6C5d"),
    ("ACCOUNT_ID", "AWS account id: 123456789012 is ours", "123456789012"),
    ("ACCOUNT_ID", "role arn:aws:iam::210987654321:role/deploy", "210987654321"),
    (
        "ACCOUNT_ID",
        "tenant-id: 123e4567-e89b-12d3-a456-426614174000 sees it",
        "123e4567-e89b-12d3-a456-426614174000",
    ),
    ("CVE", "are you affected by CVE-2024-3094?", "CVE-2024-3094"),
    ("EXCEPTION", "it throws NullPointerException on save", "NullPointerException"),
    ("EXCEPTION", "psycopg2.OperationalError: server closed", "psycopg2.OperationalError"),
    ("EXCEPTION", "java.lang.OutOfMemoryError: heap", "java.lang.OutOfMemoryError"),
    ("EXCEPTION", "raised ValueError in the worker", "ValueError"),
    ("TIMESTAMP", "first seen 2026-11-27T10:01:02Z in logs", "2026-11-27T10:01:02Z"),
    ("TIMESTAMP", "at 2026-11-27 10:01:02.123+01:00 it broke", "2026-11-27 10:01:02.123+01:00"),
    ("TIMESTAMP", "Date: Fri, 27 Nov 2026 10:01:02 +0000", "Fri, 27 Nov 2026 10:01:02 +0000"),
    ("TIMESTAMP", "Nov 27 10:01:02 web1 sshd[42]: boom", "Nov 27 10:01:02"),
]


@pytest.mark.parametrize(("label", "text", "expected"), POSITIVES)
def test_label_is_found(label: str, text: str, expected: str) -> None:
    found = [(e.label, e.text) for e in extract_entities(text)]
    assert (label, expected) in found


def labels_of(text: str) -> dict[str, str]:
    return {e.text: e.label for e in extract_entities(text)}


def test_dotted_quad_with_version_context_is_a_version() -> None:
    assert labels_of("running version 1.2.3.4 now") == {"version 1.2.3.4": "VERSION"}
    assert labels_of("running v1.2.3.4 now") == {"v1.2.3.4": "VERSION"}


def test_dotted_quad_with_large_octet_is_not_an_ip() -> None:
    assert "IP" not in labels_of("counter 300.1.2.3 and 10.0.0.256").values()


def test_four_part_numbers_inside_longer_sequences_are_not_ips() -> None:
    assert "IP" not in labels_of("oid 1.3.6.1.4.1 is fine").values()


def test_dates_are_not_versions() -> None:
    found = labels_of("released 2024.11.27 and on 27.11.2024 too")
    assert "VERSION" not in found.values()


def test_protocol_names_are_not_versions() -> None:
    found = labels_of('"GET /v2/orders HTTP/1.1" 503 from nginx/1.25.3')
    assert "HTTP/1.1" not in found
    assert found.get("nginx/1.25.3") == "VERSION"


def test_file_names_are_not_hostnames() -> None:
    found = labels_of("see app.log, config.yaml, main.py, dump.tar.gz and os.path.join")
    assert "HOSTNAME" not in found.values()


def test_decimal_after_status_word_is_not_a_status() -> None:
    assert "HTTP_STATUS" not in labels_of("the status 200.5 ms average").values()


def test_random_numbers_are_not_http_statuses() -> None:
    found = labels_of("We have 200 users, 404 tickets and 503 invoices; call 555 now.")
    assert found == {}


def test_bare_error_word_is_not_an_exception() -> None:
    assert labels_of("Error: something Exception happened") == {}


def test_hostname_inside_email_and_url_is_not_separate() -> None:
    found = extract_entities("mail bob@mail.example.com or https://api.example.com/x")
    assert [e.label for e in found] == ["EMAIL", "URL"]


def test_offsets_point_at_the_entity_text() -> None:
    text = "\n".join(t for _, t, _ in POSITIVES)
    entities = extract_entities(text)
    assert len(entities) >= len(POSITIVES) - 2
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
        assert entity.source == "body"


def test_source_is_kept() -> None:
    (entity,) = extract_entities("host 10.1.1.1", source="app.log")
    assert entity.source == "app.log"


def test_custom_account_pattern_is_used() -> None:
    settings = EntitySettings(account_id_patterns=(r"\bCUST-\d{6}\b",))
    found = extract_entities("customer CUST-004211 reports", settings=settings)
    assert [(e.label, e.text) for e in found] == [("ACCOUNT_ID", "CUST-004211")]


def test_custom_pattern_with_named_group_still_compiles() -> None:
    settings = EntitySettings(account_id_patterns=(r"(?P<id>org-\d+)", r"(?P<id>team-\d+)"))
    found = extract_entities("org-12 and team-7", settings=settings)
    assert [e.text for e in found] == ["org-12", "team-7"]


@pytest.mark.parametrize("pattern", ["(unclosed", "x*"])
def test_bad_account_pattern_is_a_clear_error(pattern: str) -> None:
    with pytest.raises(EntitySettingsError, match="account id pattern"):
        extract_entities("x", settings=EntitySettings(account_id_patterns=(pattern,)))


def test_empty_product_phrase_is_a_clear_error() -> None:
    with pytest.raises(EntitySettingsError, match="empty product"):
        extract_entities("x", settings=EntitySettings(products=("SERVICE:",)))


def test_products_and_services_are_case_insensitive_phrases() -> None:
    settings = EntitySettings(products=("Managed PostgreSQL", "SERVICE:checkout-api"))
    text = "Our managed postgresql and the Checkout-API broke; PostgreSQLX is unrelated."
    found = [(e.label, e.text) for e in extract_entities(text, settings=settings)]
    assert found == [("PRODUCT", "managed postgresql"), ("SERVICE", "Checkout-API")]


def test_longest_span_wins_between_phrase_and_regex() -> None:
    settings = EntitySettings(products=("api.example.com gateway",))
    found = extract_entities("the api.example.com gateway fails", settings=settings)
    assert [(e.label, e.text) for e in found] == [("PRODUCT", "api.example.com gateway")]


def test_dedupe_keeps_first_occurrence_per_source_and_normalised_text() -> None:
    ents = [
        Entity("HOSTNAME", "DB1.Example.com", 0, 15),
        Entity("HOSTNAME", "db1.example.com", 20, 35),
        Entity("HOSTNAME", "db1.example.com", 3, 18, source="app.log"),
        Entity("IP", "2001:DB8::1", 40, 51),
        Entity("IP", "2001:db8:0::1", 60, 73),
    ]
    kept = dedupe(ents)
    assert kept == [ents[0], ents[2], ents[3]]
    assert normalise(ents[3]) == "2001:db8::1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\x00\x00\x00",
        "\x1b[31mERROR\x1b[0m",
        "a" * 50_000,
        "::::::",
        "1." * 5000,
        # Inputs that made unbounded patterns backtrack quadratically (minutes, not ms).
        "a-" * 50_000,
        "a.b-" * 25_000,
        "1.2." * 25_000,
        "a@" * 50_000,
    ],
)
def test_garbage_does_not_raise(text: str) -> None:
    for entity in extract_entities(text):
        assert text[entity.start : entity.end] == entity.text


def test_colon_runs_times_and_scopes_are_not_ipv6() -> None:
    found = labels_of("see :: here at 12:30:45, Foo::Bar, MAC 00:1a:2b:3c:4d:5e, ratio 3:2:1")
    assert "IP" not in found.values()
