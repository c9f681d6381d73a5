"""HTML tables read cell by cell, so neighbouring cells never form one fake word."""

from __future__ import annotations

from nlp.entities.extract import extract_entities
from nlp.text import html_to_text

TABLE = (
    "<p>Affected hosts:</p><table><tr><th>Host</th><th>Region</th></tr>"
    "<tr><td>db-main-2</td><td>eu-west-1</td></tr>"
    "<tr><td>api-gw-01.example.com</td><td>us-east-1</td></tr></table><p>Thanks</p>"
)


def test_cells_of_a_row_are_separated() -> None:
    lines = html_to_text(TABLE).splitlines()
    assert "Host | Region" in lines
    assert "db-main-2 | eu-west-1" in lines
    assert "api-gw-01.example.com | us-east-1" in lines


def test_no_fake_host_from_glued_cells() -> None:
    found = [(e.label, e.text) for e in extract_entities(html_to_text(TABLE))]
    assert ("CLOUD_REGION", "eu-west-1") in found
    assert ("HOSTNAME", "api-gw-01.example.com") in found
    assert ("CLOUD_REGION", "us-east-1") in found
    assert all("db-main-2eu" not in text for _, text in found)


def test_each_row_starts_its_own_count() -> None:
    html = "<table><tr><td>a</td></tr></table><table><tr><td>b</td><td>c</td></tr></table>"
    assert html_to_text(html).splitlines()[0] == "a"
    assert "b | c" in html_to_text(html)


def test_text_outside_tables_is_unchanged() -> None:
    assert html_to_text("<p>db-main-2</p><p>eu-west-1</p>") == "db-main-2\n\neu-west-1"
