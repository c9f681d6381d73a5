"""Forms found in real support mail: account ids, dotless hosts, statuses, paired codes."""

from __future__ import annotations

import pytest

from nlp.entities.extract import EntitySettings, extract_entities


def pairs(text: str, settings: EntitySettings | None = None) -> list[tuple[str, str]]:
    return [(e.label, e.text) for e in extract_entities(text, settings=settings)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Customer acct-4821 cannot log in since the SSO change.", "acct-4821"),
        ("Please move acct_9f3k2 to the enterprise plan.", "acct_9f3k2"),
        ("The invoice for org-77123 shows a double charge.", "org-77123"),
        ("Project prj-alpha-42 hit its storage quota.", "prj-alpha-42"),
        ("Our account 12345678 was suspended without notice.", "12345678"),
        ("account id: 12345678 - please check the billing.", "12345678"),
        ("Account ID 4821-9932 needs a refund for March.", "4821-9932"),
        ("Unsere Kundennummer: 99812, bitte prüfen.", "99812"),
    ],
)
def test_account_ids_in_their_common_forms(text: str, expected: str) -> None:
    assert pairs(text) == [("ACCOUNT_ID", expected)]


def test_account_words_without_an_id_are_nothing() -> None:
    assert pairs("We have 3 accounts, an org-wide policy and 2 organizations.") == []


def test_shipped_account_forms_can_be_turned_off_for_own_patterns() -> None:
    settings = EntitySettings(account_id_patterns=(r"\bC-\d{5}\b",), default_account_ids=False)
    assert pairs("acct-4821 and C-00042", settings) == [("ACCOUNT_ID", "C-00042")]


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("connecting to db-main-2 fails", "db-main-2"),
        ("the host db-main-2 is unreachable", "db-main-2"),
        ("We see the crash only on node worker-3.", "worker-3"),
        ("Our app cannot reach server api-gw-01:5432 today.", "api-gw-01"),
        ("The hostname is cache-7.", "cache-7"),
        ("Der Server db-main-2 antwortet nicht.", "db-main-2"),
        ("Nov 27 10:01:02 web-3 sshd[4211]: Connection closed", "web-3"),
    ],
)
def test_dotless_host_names_in_a_host_position(text: str, host: str) -> None:
    assert ("HOSTNAME", host) in pairs(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please send the follow-up by e-mail; the re-run of the third-party check passed.",
        "It is a built-in feature of the server-side renderer.",
        "connecting to e-mail servers is slow, the host re-run helped",
        "kubectl rollout restart deployment/api-7f9c did not help",
        "server v2 is out, node 18 is used",
    ],
)
def test_hyphenated_words_and_k8s_resources_are_not_hosts(text: str) -> None:
    assert "HOSTNAME" not in [label for label, _ in pairs(text)]


def test_k8s_resource_keeps_its_label() -> None:
    assert pairs("restart deployment/api-7f9c") == [("K8S_RESOURCE", "deployment/api-7f9c")]


def test_a_word_after_connect_that_is_no_host_is_still_seen() -> None:
    assert pairs("Error: connect ECONNREFUSED 127.0.0.1:6379") == [
        ("ERROR_CODE", "ECONNREFUSED"),
        ("IP", "127.0.0.1"),
    ]


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("The API gives error 500 on every POST.", "500"),
        ("Since 09:40 we get HTTP 502 from the edge.", "502"),
        ("The health check shows status 503.", "503"),
        ("The export endpoint returned 404 although the file exists.", "404"),
        ("The response code is 500 and the body is empty.", "500"),
        ('{"code":"X","status":429}', "429"),
        ("le serveur renvoie une erreur 502", "502"),
    ],
)
def test_http_status_after_status_words(text: str, status: str) -> None:
    assert ("HTTP_STATUS", status) in pairs(text)


def test_error_137_is_not_an_http_status() -> None:
    assert "HTTP_STATUS" not in [label for label, _ in pairs("the job died with error 137")]


def test_code_with_status_in_parentheses_gives_both() -> None:
    assert pairs("Uploading fails with AccessDenied (403).") == [
        ("ERROR_CODE", "AccessDenied"),
        ("HTTP_STATUS", "403"),
    ]


def test_error_codes_stay_error_codes() -> None:
    found = pairs("AccessDenied, then ECONNREFUSED and ERR_TLS_CERT_ALTNAME_INVALID")
    assert found == [
        ("ERROR_CODE", "AccessDenied"),
        ("ERROR_CODE", "ECONNREFUSED"),
        ("ERROR_CODE", "ERR_TLS_CERT_ALTNAME_INVALID"),
    ]


def test_versions_after_component_names() -> None:
    found = pairs("We run PostgreSQL 14.7, Redis 7.2, Java 17 and iOS 17 apps.")
    assert found == [("VERSION", "14.7"), ("VERSION", "7.2"), ("VERSION", "17"), ("VERSION", "17")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.9 - - [03/Feb/2025:10:02:11 +0000] x", "03/Feb/2025:10:02:11 +0000"),
        ("Date: Mon, 3 Feb 2025 at 10:02", "Mon, 3 Feb 2025 at 10:02"),
        ("Sent: Monday, February 3, 2025 10:02 AM", "Monday, February 3, 2025 10:02 AM"),
    ],
)
def test_timestamps_of_access_logs_and_mail_clients(text: str, expected: str) -> None:
    assert ("TIMESTAMP", expected) in pairs(text)


def test_table_cells_are_not_glued_into_one_url_or_host() -> None:
    found = pairs("https://status.example.com | db-main-2 | eu-west-1")
    assert found[0] == ("URL", "https://status.example.com")
    assert ("CLOUD_REGION", "eu-west-1") in found
