"""The generated incident week: deterministic, realistic in shape, and true to its own truth."""

from __future__ import annotations

import importlib
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

# bench/ is a folder of scripts that mypy checks as top-level modules; importing it by
# name here keeps mypy from seeing the same file under two module names.
incident_week: Any = importlib.import_module("bench.incident_week")


@pytest.fixture(scope="module")
def week() -> Any:
    return incident_week.generate_week(seed=7)


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(week: Any) -> None:
    again = incident_week.generate_week(seed=7)
    assert [m.raw for m in again.mails] == [m.raw for m in week.mails]
    other = incident_week.generate_week(seed=8)
    assert [m.raw for m in other.mails] != [m.raw for m in week.mails]


def test_every_mail_parses_and_its_headers_match_the_record(week: Any) -> None:
    offsets = set()
    for mail in week.mails:
        msg = parse(mail.raw)
        assert msg.defects == []
        assert msg["Message-ID"] == mail.message_id
        assert msg["Date"].datetime == mail.written_at  # same instant, whatever the zone
        offsets.add(msg["Date"].datetime.utcoffset())
        (sender,) = msg["From"].addresses
        assert sender.display_name and sender.addr_spec == mail.sender
        assert mail.sender.endswith("@" + mail.customer)
        assert msg["To"] == "support@example-cloud.test" and msg["Subject"]
    assert len({m.message_id for m in week.mails}) == len(week.mails)
    assert [m.written_at for m in week.mails] == sorted(m.written_at for m in week.mails)
    assert all(m.written_at.tzinfo == UTC for m in week.mails)
    assert len(offsets) >= 4  # customers write from several time zones


def test_traffic_has_a_working_day_and_a_weekend(week: Any) -> None:
    per_day = Counter(m.written_at.weekday() for m in week.mails if m.incident is None)
    weekday = sum(per_day[d] for d in range(5)) / 5
    weekend = (per_day[5] + per_day[6]) / 2
    assert 30 <= sum(per_day.values()) / 7 <= 50
    assert weekend < weekday / 2
    ordinary = [m for m in week.mails if m.incident is None and m.written_at.weekday() < 5]
    office = sum(8 <= m.written_at.hour < 18 for m in ordinary)
    assert office / len(ordinary) > 0.7
    assert len({m.customer for m in week.mails}) >= 100


def test_ordinary_traffic_shares_entities_by_chance(week: Any) -> None:
    texts = [text_of(parse(m.raw)) for m in week.mails if m.incident is None]
    assert sum("401" in t for t in texts) >= 2
    assert sum("us-east-1" in t for t in texts) >= 3
    assert sum("429" in t for t in texts) >= 2
    assert len({m.intent for m in week.mails if m.incident is None}) >= 8


def test_the_outage_truth_matches_its_mails(week: Any) -> None:
    truth = week.incidents["outage"]
    mails = [m for m in week.mails if m.incident == "outage"]
    assert truth.start == datetime(2026, 11, 20, 14, 10, tzinfo=UTC)  # Friday
    assert truth.end - truth.start == timedelta(hours=2, minutes=30)
    assert truth.message_ids == {m.message_id for m in mails}
    assert truth.customers == {m.customer for m in mails} and len(truth.customers) == 35
    assert all(truth.start <= m.written_at < truth.end for m in mails)
    subjects = {parse(m.raw)["Subject"].removeprefix("Re: ") for m in mails}
    assert len(subjects) >= 8
    first_bin = sum(m.written_at < truth.start + timedelta(minutes=10) for m in mails)
    assert 0 < first_bin < 20  # a burst, not a wall


def test_six_outage_customers_follow_up_in_their_own_thread(week: Any) -> None:
    mails = {m.message_id: m for m in week.mails if m.incident == "outage"}
    follow_ups = []
    for mail in mails.values():
        msg = parse(mail.raw)
        parent = mails.get(msg["In-Reply-To"] or "")
        if parent is not None:
            assert parent.customer == mail.customer and parent.written_at < mail.written_at
            assert mail.message_id not in msg["References"]
            assert parent.message_id in msg["References"]
            follow_ups.append(mail.customer)
    assert len(follow_ups) == len(set(follow_ups)) == 6


def test_three_outage_customers_have_two_people_writing_separately(week: Any) -> None:
    senders = defaultdict(set)
    for mail in week.mails:
        if mail.incident == "outage":
            senders[mail.customer].add(mail.sender)
    assert sum(len(people) == 2 for people in senders.values()) == 3


def test_outage_logs_come_in_three_formats(week: Any) -> None:
    formats: Counter[str] = Counter()
    for mail in week.mails:
        if mail.incident != "outage":
            continue
        for part in parse(mail.raw).iter_attachments():
            log = part.get_content()
            assert part.get_content_type() == "text/plain"
            if log.startswith("{"):
                records = [json.loads(line) for line in log.splitlines()]
                assert any(r["level"] == "error" and r["status"] == 503 for r in records)
                formats["json"] += 1
            elif re.search(r"(ERROR:root:|,\d{3} - app\.client - ERROR - )", log):
                formats["python"] += 1
            elif re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ERROR .*503", log, re.M):
                formats["plain"] += 1
    assert set(formats) == {"json", "python", "plain"}
    assert 14 <= sum(formats.values()) <= 22  # about half of the 35 customers


def test_the_certificate_incident_matches_its_mails(week: Any) -> None:
    truth = week.incidents["cert"]
    mails = [m for m in week.mails if m.incident == "cert"]
    assert truth.start == datetime(2026, 11, 18, 9, tzinfo=UTC)  # Wednesday
    assert truth.end - truth.start == timedelta(hours=20)
    assert len(mails) == len(truth.customers) == 8
    assert truth.message_ids == {m.message_id for m in mails}
    for mail in mails:
        msg = parse(mail.raw)
        everything = text_of(msg) + msg["Subject"]
        everything += "".join(p.get_content() for p in msg.iter_attachments())
        assert "expired" in everything
        assert truth.start <= mail.written_at < truth.end


def test_write_eml_dumps_every_mail(week: Any, tmp_path: Path) -> None:
    paths = incident_week.write_eml(week, tmp_path / "week")
    assert len(paths) == len(week.mails)
    assert [p.read_bytes() for p in paths] == [m.raw for m in week.mails]
