"""Machine names, project slugs and clock times as customers write them."""

from __future__ import annotations

import pytest

from nlp.entities.extract import extract_entities


def found(text: str) -> list[tuple[str, str]]:
    return [(e.label, e.text) for e in extract_entities(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("writes are slow on ingest-db-2 since Monday", ("HOSTNAME", "ingest-db-2")),
        ("db-reports-1 has been at 100% CPU", ("HOSTNAME", "db-reports-1")),
        ("connection refused to cache-1", ("HOSTNAME", "cache-1")),
        ("no podemos conectar al clúster k8s-mx-1", ("HOSTNAME", "k8s-mx-1")),
        ("as consultas no banco pg-frete-prod estão lentas", ("HOSTNAME", "pg-frete-prod")),
        ("The database is db-main-2 (managed)", ("HOSTNAME", "db-main-2")),
        ("our managed Postgres dt-pg-main, and", ("HOSTNAME", "dt-pg-main")),
        ("behind the Load Balancer lb-web-1", ("HOSTNAME", "lb-web-1")),
        ("point shop.fernandfig.shop at the CDN", ("HOSTNAME", "shop.fernandfig.shop")),
        ("Project prj-shipfast-prod, region us-east-2", ("ACCOUNT_ID", "prj-shipfast-prod")),
        ("it stopped answering at 14:02 UTC.", ("TIMESTAMP", "14:02 UTC")),
        ("seit 09:15 Uhr liefern alle Endpunkte 502", ("TIMESTAMP", "09:15 Uhr")),
    ],
)
def test_found(text: str, expected: tuple[str, str]) -> None:
    assert expected in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "a db-heavy workload with k8s-native tools",
        "read the api-v2 docs for the org-wide policy",
        "the ratio is 3:45 and we met at 10:30",
        "a database administrator changed the proxy settings",
    ],
)
def test_prose_is_not_a_machine(text: str) -> None:
    assert found(text) == []
