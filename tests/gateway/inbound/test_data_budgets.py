"""DATA budgets: one address's share of the bytes in memory, and pacing of huge messages.

The bookkeeping is checked as pure logic; the share and the pacing are then checked on
a real front door on 127.0.0.1 with clients from two loopback addresses.
"""

from __future__ import annotations

import gc
import smtplib
import socket
import time
import tracemalloc

import pytest
from sqlalchemy.engine import Engine

from gateway.config import ConfigError
from gateway.inbound.guard import ByteBudget, DataPacer
from gateway.inbound.session import BUDGET_CHUNK
from tests.gateway.inbound.test_smtp import count, make_mail


def test_one_address_cannot_take_more_than_its_share() -> None:
    budget = ByteBudget(1000, per_client=300)
    assert budget.take(300, "10.0.0.1")
    assert not budget.take(1, "10.0.0.1")
    assert budget.take(300, "10.0.0.2") and budget.used == 600
    budget.give_back(100, "10.0.0.1")
    assert budget.used_by("10.0.0.1") == 200 and budget.take(100, "10.0.0.1")
    budget.give_back(300, "10.0.0.1")
    assert budget.used_by("10.0.0.1") == 0 and budget.used == 300


def test_the_total_still_caps_all_addresses_together() -> None:
    budget = ByteBudget(500, per_client=300)
    assert budget.take(300, "a") and budget.take(200, "b")
    assert not budget.take(1, "c")
    assert ByteBudget(100, per_client=1000).per_client == 100


def test_pacer_books_one_shared_clock_with_a_little_burst() -> None:
    pacer = DataPacer(1000, burst=0.5)
    assert pacer.delay(500, now=10.0) == 0.0  # within the burst credit
    assert pacer.delay(500, now=10.0) == pytest.approx(0.5)
    assert pacer.delay(1000, now=10.0) == pytest.approx(1.5)  # a second reader queues
    assert pacer.delay(100, now=100.0) == 0.0  # credit returns when idle, but only 0.5 s
    assert DataPacer(0).delay(10**9, now=0.0) == 0.0  # 0 = unpaced


def test_per_address_share_defaults_to_a_tenth(make_config) -> None:
    smtp = make_config(smtp={"max_bytes_in_flight": 500 << 20}).smtp
    assert smtp.bytes_per_ip == 50 << 20
    small = make_config(smtp={"max_bytes_in_flight": 100 << 20}).smtp
    assert small.bytes_per_ip == small.max_message_size  # never below one whole message
    with pytest.raises(ConfigError, match="max_bytes_in_flight_per_ip"):
        make_config(smtp={"max_bytes_in_flight_per_ip": 2048})


def _hold_open_data(port: int, source: str, nbytes: int) -> socket.socket:
    """A client from `source` that starts DATA, sends `nbytes`, and never ends it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(b"HELO hog\r\nMAIL FROM:<hog@b.example>\r\nRCPT TO:<support@example.com>\r\n")
    sock.sendall(b"DATA\r\n")
    while not reader.readline().startswith(b"354"):
        pass
    sock.sendall(b"Subject: big\r\n\r\n" + (b"y" * 98 + b"\r\n") * (nbytes // 100))
    return sock


def test_an_address_holding_its_share_does_not_starve_others(smtp_server, engine: Engine) -> None:
    # Bytes are booked 16 KiB at a time (session.BUDGET_CHUNK): two hogs book 32 KiB of
    # the 40,000-byte share, the third is refused its first chunk.
    controller, port = smtp_server(
        max_message_size=40_000, max_bytes_in_flight=120_000, max_bytes_in_flight_per_ip=40_000
    )
    hogs = [_hold_open_data(port, "127.0.0.2", 17_000) for _ in range(3)]
    try:
        deadline = time.monotonic() + 5
        while controller.guard.data.used_by("127.0.0.2") < 2 * BUDGET_CHUNK:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)  # the third hog's chunk is refused, not booked
        assert 2 * BUDGET_CHUNK <= controller.guard.data.used_by("127.0.0.2") < 3 * BUDGET_CHUNK
        mail = make_mail(1, body="z" * 70 + ("\n" + "z" * 70) * 120)
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=("127.0.0.2", 0)) as c:
            with pytest.raises(smtplib.SMTPDataError) as full:
                c.sendmail("hog@b.example", ["support@example.com"], mail)
            assert full.value.smtp_code == 452
        # The budget as a whole has room, and another address gets it.
        assert controller.guard.data.used <= 40_000
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail("dana@acme.example", ["support@example.com"], mail) == {}
    finally:
        for sock in hogs:
            sock.close()
    assert count(engine) == 1


def test_large_messages_are_read_at_the_bulk_rate(smtp_server, engine: Engine) -> None:
    _, port = smtp_server(bulk_data_rate=1 << 20)  # 1 MiB/s past each message's first MiB
    body = ("x" * 76 + "\n") * (40 * 1024)  # about 3.1 MiB on the wire
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.sendmail("dana@acme.example", ["support@example.com"], make_mail(2, body=body))
    elapsed = time.monotonic() - started
    # About 2.1 MiB paced at 1 MiB/s, less the 0.25 s of burst credit.
    assert elapsed >= 1.5, elapsed
    assert count(engine) == 1


def test_a_dropped_connection_frees_its_data_at_once(smtp_server) -> None:
    """The bytes of an unfinished DATA go when the client drops, not at the next GC."""
    controller, port = smtp_server(bulk_data_rate=0)
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sock = _hold_open_data(port, "127.0.0.3", 4_000_000)
        deadline = time.monotonic() + 10
        while controller.guard.data.used < 3_900_000:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        held = tracemalloc.get_traced_memory()[0]
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        while controller.guard.data.used:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.2)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held - before > 3_500_000
    assert after - before < 1_000_000, (before, held, after)
