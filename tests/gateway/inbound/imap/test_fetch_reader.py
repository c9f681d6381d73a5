"""The lean FETCH reader: its fast shapes, and the fallback for everything else."""

from __future__ import annotations

from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from gateway.inbound.imap import fetch as imap_fetch
from gateway.inbound.imap.fetch import bodies_from, fetch_bodies, fetch_sizes, sizes_from
from tests.support.dovecot import Dovecot, make_message


def test_plain_body_shapes_are_read_directly() -> None:
    data = [
        (b"1 (UID 7 BODY[] {5}", b"hello"),
        b")",
        (b"2 (BODY[] {3}", b"abc"),
        b" UID 9)",
    ]
    assert bodies_from(data) == {7: b"hello", 9: b"abc"}


@pytest.mark.parametrize(
    "data",
    [
        [(b"1 (UID 7 BODY[] {9}", b"too short"[:5]), b")"],  # literal length disagrees
        [(b"1 (UID 7 BODY[] {5}", b"hello"), b" UID 7)"],  # UID twice
        [(b"1 (BODY[] {5}", b"hello"), b")"],  # no UID at all
        [(b"1 (UID 7 FLAGS (\\Seen) BODY[] {5}", b"hello"), b")"],  # other items
        [b"3 (FLAGS (\\Flagged) MODSEQ (9))", (b"1 (UID 7 BODY[] {5}", b"hello"), b")"],
        [(b"1 (UID 7 BODY[] {5}", b"hello")],  # no closing parenthesis
    ],
)
def test_anything_else_goes_to_the_general_parser(data: list[object]) -> None:
    assert bodies_from(data) is None


def test_flag_updates_from_another_connection_are_skipped() -> None:
    data = [
        b"3 (FLAGS (\\Seen $Stored))",
        (b"1 (UID 7 BODY[] {5}", b"hello"),
        b")",
        b"4 (UID 9 FLAGS ())",
        b"5 (FLAGS (\\Seen) UID 10)",
    ]
    assert bodies_from(data) == {7: b"hello"}
    # What the general parser makes of it: the same bodies.
    assert imap_fetch._bodies(imap_fetch._parsed(data)) == {7: b"hello"}


def test_size_shapes() -> None:
    assert sizes_from([b"1 (UID 4 RFC822.SIZE 120)", b"2 (RFC822.SIZE 99 UID 5)"]) == {
        4: 120,
        5: 99,
    }
    assert sizes_from([b"1 (UID 4 RFC822.SIZE 120 FLAGS ())"]) is None


def _select(server: Dovecot, user: str = "alice") -> IMAPClient:
    client = server.client(user)
    client.select_folder("INBOX")
    return client


def test_real_server_bodies_and_sizes_match_imapclient(dovecot: Dovecot) -> None:
    messages = [make_message(i, size=900) for i in range(6)]
    dovecot.append(messages)
    client = _select(dovecot)
    uids = client.search("ALL")
    expected = {u: bytes(v[b"BODY[]"]) for u, v in client.fetch(uids, [b"BODY.PEEK[]"]).items()}
    sizes = {u: v[b"RFC822.SIZE"] for u, v in client.fetch(uids, [b"RFC822.SIZE"]).items()}
    assert fetch_bodies(client, uids) == expected and set(expected) == set(uids)
    assert fetch_sizes(client, uids) == sizes
    # Asking for a UID that does not exist simply leaves it out.
    assert set(fetch_bodies(client, [uids[0], 999])) == {uids[0]}
    assert fetch_bodies(client, []) == {} and fetch_sizes(client, []) == {}
    client.logout()


def test_unsolicited_flag_updates_are_skipped_not_parsed(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session flags messages; the server reports it inside our FETCH."""
    messages = [make_message(i, size=700) for i in range(4)]
    dovecot.append(messages)
    reader, other = _select(dovecot), _select(dovecot)
    uids = reader.search("ALL")
    other.add_flags(uids[:2], [b"\\Flagged"])
    general: list[int] = []
    parse = imap_fetch._parsed

    def counted(data: list[Any]) -> dict[int, dict[bytes, Any]]:
        general.append(len(data))
        return parse(data)

    monkeypatch.setattr(imap_fetch, "_parsed", counted)
    data = imap_fetch._read_fetch(reader, imap_fetch._send_fetch(reader, uids[1:], "(BODY.PEEK[])"))
    assert any(isinstance(d, bytes) and b"FLAGS" in d for d in data), "no flag update came"
    got = imap_fetch._read(data, uids[1:], bodies_from, imap_fetch._bodies)
    assert general == []
    assert set(got) == set(uids[1:])  # the flagged UID was not asked for: not returned
    assert sorted(got.values()) == sorted(messages[1:])
    reader.logout()
    other.logout()


def test_a_failed_fetch_raises(dovecot: Dovecot) -> None:
    client = dovecot.client()  # no folder selected: FETCH is refused
    with pytest.raises(IMAPClientError):
        fetch_bodies(client, [1])
    client.logout()


def test_general_parser_never_files_a_body_under_a_sequence_number() -> None:
    data = [
        (b"7 (BODY[] {5}", b"hello"),  # no UID: sequence number 7 is not a UID
        b")",
        (b"8 (FLAGS () UID 12 BODY[] {3}", b"abc"),
        b")",
    ]
    assert bodies_from(data) is None
    assert {uid: bytes(item[b"BODY[]"]) for uid, item in imap_fetch._parsed(data).items()} == {
        12: b"abc"
    }


def test_a_nil_body_is_a_clear_error_not_a_silently_skipped_message() -> None:
    """Skipping it would let the checkpoint pass a message that was never stored."""
    data = [b"3 (UID 9 BODY[] NIL)"]
    assert bodies_from(data) is None
    with pytest.raises(IMAPClientError, match="no body for UID 9"):
        imap_fetch._bodies(imap_fetch._parsed(data))


def test_a_fetch_sent_before_the_last_one_is_read_keeps_each_batch_apart(
    dovecot: Dovecot,
) -> None:
    dovecot.append([make_message(i) for i in range(6)])
    client = dovecot.client()
    client.select_folder("INBOX", readonly=True)
    first = imap_fetch.BodyFetch(client, [1, 2, 3])
    bodies = first.result()
    second = imap_fetch.BodyFetch(client, [4, 5, 6])  # sent; read after other work
    assert set(bodies) == {1, 2, 3} and set(second.result()) == {4, 5, 6}
    assert imap_fetch.BodyFetch(client, []).result() == {}
    client.logout()


@pytest.mark.parametrize("traced", [False, True])
def test_imaplib_formats_its_trace_only_when_the_logger_would_print_it(
    dovecot: Dovecot, traced: bool, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.append([make_message(1)])
    client = dovecot.client()
    client.select_folder("INBOX", readonly=True)
    levels: list[int] = []
    real = client._imap._command_complete

    def spy(*args: Any) -> Any:
        levels.append(client._imap.debug)
        return real(*args)

    client._imap._command_complete = spy
    caplog.set_level("DEBUG" if traced else "INFO", logger="imapclient.imaplib")
    assert set(fetch_bodies(client, [1])) == {1}
    assert levels == [5 if traced else 0]
    assert client._imap.debug == 5  # imapclient's own setting is back afterwards
    assert any("FETCH" in r.getMessage() for r in caplog.records) == traced
    client.logout()
