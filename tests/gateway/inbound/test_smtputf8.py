"""SMTPUTF8 mail (RFC 6532: raw UTF-8 in headers) is read as written and answered.

A customer at an internationalised domain writes with a UTF-8 name and subject; the
bytes go through ingest, the analysis runner on a temp SQLite, a rep's release and the
sender to a recording relay, which must receive the reply at the punycode domain.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.config import Config
from gateway.conversation.pipeline import AnalysisRunner
from gateway.inbound.ingest import ingest
from gateway.inbound.parse import parse_message
from gateway.outbound.message import envelope_address
from gateway.outbound.sender import SenderRunner
from gateway.runner import run_until_idle
from storage.models import Draft, Message, MessageState, Outbox, OutboxState
from tests.support.relay import rep_releases, running_sink, sender_config

UTF8_MAIL = (
    "From: José Núñez <jose@bücher.example>\r\nTo: Soporte <support@example.com>\r\n"
    "Cc: María <maria@bücher.example>\r\nSubject: Re: Contraseña olvidada\r\n"
    "Message-ID: <ñ1@bücher.example>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "No puedo iniciar sesión desde ayer; la contraseña no funciona.\r\n"
).encode()

LATIN1_MAIL = (
    "From: Jürgen Groß <juergen@customer.example>\r\nSubject: Passwort vergessen\r\n\r\n"
    "Ich kann mich nicht anmelden.\r\n"
).encode("latin-1")


def test_utf8_headers_are_read_as_utf8() -> None:
    parsed = parse_message(UTF8_MAIL)
    assert (parsed.from_name, parsed.from_addr) == ("José Núñez", "jose@bücher.example")
    assert parsed.subject == "Re: Contraseña olvidada"
    assert parsed.cc == ("maria@bücher.example",)
    assert parsed.header("From") == '"José Núñez" <jose@bücher.example>'
    assert "\ufffd" not in "".join(value for _, value in parsed.headers)


def test_eight_bit_headers_that_are_not_utf8_fall_back_to_latin1() -> None:
    parsed = parse_message(LATIN1_MAIL)
    assert (parsed.from_name, parsed.subject) == ("Jürgen Groß", "Passwort vergessen")


@pytest.mark.parametrize("smtputf8", [False, True], ids=["ascii-relay", "smtputf8-relay"])
def test_reply_to_an_internationalised_domain_goes_out(
    engine: Engine, make_config: Callable[..., Config], smtputf8: bool
) -> None:
    with running_sink(enable_SMTPUTF8=smtputf8) as (handler, port):
        config = sender_config(make_config, port)
        pk = ingest(engine, UTF8_MAIL, source="test", envelope_from="jose@bücher.example")
        run_until_idle([AnalysisRunner(config, engine)])
        with Session(engine) as session:
            message = session.get(Message, pk.message_pk)
            assert message is not None and message.state == MessageState.DRAFTED, message
            # Stored at ingest as written, not as replacement characters.
            assert (message.from_name, message.subject) == ("José Núñez", "Re: Contraseña olvidada")
            draft = session.exec(select(Draft).where(Draft.message_pk == message.id)).one()
            assert draft.to_addr == "jose@bücher.example"
        outbox_id = rep_releases(engine, int(draft.id or 0), body="Le enviamos un enlace nuevo.")
        run_until_idle([SenderRunner(config, engine)])
        with Session(engine) as session:
            row = session.get(Outbox, outbox_id)
            assert row is not None
            assert row.state == OutboxState.SENT, row.last_error
    [(_, rcpts, raw)] = handler.messages
    assert rcpts == ["jose@xn--bcher-kva.example"]
    assert b"Contrase" in raw and b"\xef\xbf\xbd" not in raw
    [msg] = handler.parsed()
    assert str(msg["Subject"]).startswith("Re: Contraseña olvidada")


def test_domains_are_mapped_by_idna_2008() -> None:
    # IDNA 2003 would send this to strasse.de, a different domain.
    assert envelope_address("kunde@straße.de") == "kunde@xn--strae-oqa.de"
    assert envelope_address("jose@Bücher.example") == "jose@xn--bcher-kva.example"
