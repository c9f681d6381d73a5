"""Log masks replace values that vary, never the words that say what failed."""

from __future__ import annotations

import pytest

from nlp.logs.mining import make_template_miner


def _template(line: str) -> str:
    return str(make_template_miner().add_log_message(line)["template_mined"])


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("ERROR ORA-12541: TNS:no listener", "TNS:no listener"),
        ("ERROR connect:no route to host", "connect:no route to host"),
    ],
)
def test_a_no_after_a_colon_is_the_failure_not_a_flag_value(line: str, kept: str) -> None:
    assert kept in _template(line)


def test_flag_values_are_still_masked() -> None:
    template = _template("WARN updateClipping isOverlap:false, ws=null, retry=no")
    assert template == "WARN updateClipping isOverlap:<VAL>, ws=<VAL>, retry=<VAL>"
