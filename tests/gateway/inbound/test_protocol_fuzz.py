"""The SMTP front door under a seeded protocol fuzzer: raw sockets, hostile command streams.

Two hundred sessions, each a script of at most thirty steps drawn from `random.Random` seeded
with (SEED, session number), run four at a time against one real front door on
127.0.0.1: valid and invalid verbs in any case, pipelined garbage (NUL, bare CR, bare
LF, 8-bit bytes), command lines over 1000 bytes, DATA with odd dot-stuffing and
smuggling-shaped line endings, RSET mid-transaction, recipient floods, half-closed and
abruptly reset connections. Every step has a bounded socket timeout and the run stops
starting sessions after a fixed budget, so the test always ends.

What must hold afterwards:
1. a well-behaved smtplib client still gets its mail accepted (the server keeps answering);
2. every fuzzed message that got a 250 to its DATA is stored exactly once, under the
   message number the reply named, with the de-stuffed bytes that were sent; a message
   answered 4xx/5xx, or whose final dot was never sent, is not stored at all, and one
   whose reply was lost (the client half-closed first) is stored at most once;
3. every reply line starts with a three-digit code;
and, while at it: no transaction is granted more than 100 recipients and every stored
envelope recipient is one the front door is configured to accept (no relaying).

A failing run names the session; `_script(SEED, n)` rebuilds its exact steps.
"""

from __future__ import annotations

import contextlib
import random
import re
import smtplib
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from storage.models import Message, RawMessage
from tests.gateway.inbound.test_smtp import make_mail

SEED = 0x5EED_2025
SESSIONS = 200
MAX_STEPS = 30
WORKERS = 4
READ_TIMEOUT = 3.0  # seconds for any one reply
FUZZ_BUDGET = 20.0  # seconds after which no new session starts
MAX_RCPTS = 100  # what the front door grants per transaction (smtp.MAX_RECIPIENTS)

REPLY_LINE = re.compile(rb"^[2-5][0-9][0-9](?:[ -]|$)")
STORED = re.compile(rb"^250 .*Stored as #(\d+)")

OUR_RCPTS = [
    "support@example.com",
    "SUPPORT@Example.COM",
    "anyone@help.example.org",
    "ops.team+tag@HELP.example.org",
    "postmaster",
    "postmaster@example.com",
]
FOREIGN_RCPTS = [
    "victim@elsewhere.example",
    "x@evil.help.example.org.attacker.example",
    "support@example.com.attacker.example",
    "@relay.example:user@elsewhere.example",
    "user%elsewhere.example@help.example.org.evil",
    "",
    "a" * 300 + "@elsewhere.example",
]
SENDERS = [
    "FROM:<dana@acme.example>",
    "FROM:<>",
    "from:<ops@customer.example> SIZE=2048",
    "FROM:<ops@customer.example> BODY=8BITMIME",
    "FROM:<ops@customer.example> SMTPUTF8",
    "FROM:<ops@customer.example> FOO=bar",
    "FROM:dana@acme.example",
    "FROM: <dana@acme.example>",
    "FROM:<" + "d" * 600 + "@acme.example>",
    "FROM<dana@acme.example>",
    "TO:<dana@acme.example>",
]
VERBS = ["NOOP", "HELP", "VRFY postmaster", "EXPN staff", "TURN", "ETRN x", "BDAT 10", "STARTTLS"]
GARBAGE_ATOMS = [
    b"\x00",
    b"\r",
    b"\n",
    b"\xff\xfe",
    b"\xc3\xa9",
    b" ",
    b"\t",
    b"MAIL",
    b"RCPT TO:<victim@elsewhere.example>",
    b"DATA",
    b".",
    b"QUIT",
    b"GET / HTTP/1.1",
    b"\x16\x03\x01\x00\xa5",
    b"%s%n",
    b"\x1b[2J",
]


def ours(address: str) -> bool:
    """The recipients the fixture's front door accepts, stated independently of the code."""
    addr = address.strip().lower()
    return (
        addr in {"support@example.com", "postmaster", "postmaster@example.com"}
        or addr == "postmaster@help.example.org"
        or (addr.count("@") == 1 and addr.endswith("@help.example.org") and addr[0] != "@")
    )


# --------------------------------------------------------------------------- scripts


@dataclass(frozen=True)
class Step:
    kind: str
    payload: Any = None


@dataclass(frozen=True)
class Body:
    """One DATA body: what goes on the wire and what the server must keep of it."""

    mid: str
    wire: bytes  # everything after the 354, final ".\r\n" included when `terminated`
    expected: bytes  # the de-stuffed message
    terminated: bool
    too_long: bool  # has a line over 1000 bytes: must not get a 250
    then: str = "wait"  # "wait" for the reply, "shut" (SHUT_WR right after), "reset"


def _content(rng: random.Random, atoms: list[bytes], n: int) -> bytes:
    """Random bytes from `atoms` without an accidental CRLF (that would end the line)."""
    data = b"".join(rng.choice(atoms) for _ in range(n))
    while b"\r\n" in data:
        data = data.replace(b"\r\n", b"\r \n")
    return data


BODY_ATOMS = [b"abc ", b"503 ", b"\x00", b"\r", b"\n", b".", b"..", b"\xe2\x82\xac", b"\xff", b"\t"]


def _body_line(rng: random.Random) -> bytes:
    """One wire line of DATA, CRLF included, with the shapes that trip dot-stuffing."""
    shape = rng.randrange(14)
    if shape == 0:
        return b"..\r\n"  # a stuffed lone dot: stored as "."
    if shape == 1:
        return b"...\r\n"
    if shape == 2:
        return b".not stuffed by a careless client\r\n"  # the server drops the dot
    if shape == 3:
        return b"foo\n.\nbar\r\n"  # bare-LF "end of data": not an end in SMTP
    if shape == 4:
        return b"foo\n.\r\n"  # smuggling shape: <LF>.<CR><LF>
    if shape == 5:
        return b"\r.\r\r\n"
    if shape == 6:
        return b". \r\n"
    if shape == 7:
        return b".\x00\r\n"
    if shape == 8:
        return b"\r\n"
    if shape == 9:
        return b"MAIL FROM:<smuggled@elsewhere.example>\r\n"
    if shape == 10:
        return b" .\r\n"
    if shape == 11:
        return b"." + b"y" * 997 + b"\r\n"  # 1000 octets with CRLF: the legal maximum
    return _content(rng, BODY_ATOMS, rng.randrange(1, 40)) + b"\r\n"


def _body(rng: random.Random, mid: str) -> Body:
    lines = [
        f"Message-ID: <{mid}>\r\n".encode(),
        b"From: Fuzz <fuzz@acme.example>\r\n",
        b"To: support@example.com\r\n",
        f"Subject: fuzz {mid}\r\n".encode(),
        b"\r\n",
    ]
    lines += [_body_line(rng) for _ in range(rng.randrange(0, 12))]
    # A random line that is exactly "." would end the DATA early: stuff it like a client.
    lines = [b".." + line[1:] if line == b".\r\n" else line for line in lines]
    too_long = rng.random() < 0.1
    if too_long:
        lines.insert(rng.randrange(5, len(lines) + 1), b"x" * rng.randrange(1100, 5000) + b"\r\n")
    expected = b"".join(line[1:] if line.startswith(b".") else line for line in lines)
    terminated = rng.random() < 0.85
    wire = b"".join(lines)
    if terminated:
        wire += b".\r\n"
        then = rng.choices(["wait", "shut", "reset"], weights=[12, 2, 1])[0]
    else:
        wire = wire[: rng.randrange(1, len(wire) + 1)]
        then = rng.choice(["shut", "reset", "close"])
    return Body(mid, wire, expected, terminated, too_long, then)


def _script(seed: int, session: int) -> list[Step]:
    """The steps of one session: a pure function of (seed, session)."""
    rng = random.Random(f"{seed}:{session}")
    steps: list[Step] = []
    if rng.random() < 0.85:
        steps.append(Step("line", rng.choice([b"EHLO client.example", b"HELO client.example"])))
    n_data = 0
    target = rng.randrange(1, MAX_STEPS + 1)
    while len(steps) < target:
        roll = rng.random()
        if roll < 0.25:
            # A whole transaction, sometimes RSET before its DATA.
            steps.append(Step("line", b"MAIL FROM:<dana@acme.example>"))
            for _ in range(rng.randrange(1, 4)):
                rcpt = rng.choice(OUR_RCPTS if rng.random() < 0.8 else FOREIGN_RCPTS)
                steps.append(Step("line", f"RCPT TO:<{rcpt}>".encode()))
            if rng.random() < 0.1:
                steps.append(Step("line", b"RSET"))
            mid = f"fuzz-{session}-{n_data}.{seed:x}@fuzz.example"
            n_data += 1
            steps.append(Step("data", _body(rng, mid)))
            continue
        roll = rng.random()
        if roll < 0.12:
            verb = rng.choice(["EHLO", "HELO", "ehlo", "Helo"])
            arg = rng.choice(["client.example", "", "[127.0.0.1]", "x" * 600, "a b c"])
            steps.append(Step("line", f"{verb} {arg}".rstrip().encode()))
        elif roll < 0.24:
            steps.append(Step("line", f"MAIL {rng.choice(SENDERS)}".encode()))
        elif roll < 0.42:
            pool = OUR_RCPTS if rng.random() < 0.7 else FOREIGN_RCPTS
            form = rng.choice(["TO:<{}>", "to:<{}>", "TO:{}", "TO: <{}>", "TO<{}>"])
            steps.append(Step("line", ("RCPT " + form.format(rng.choice(pool))).encode()))
        elif roll < 0.46:
            steps.append(Step("rcpt_flood", rng.randrange(20, 115)))
        elif roll < 0.58:
            mid = f"fuzz-{session}-{n_data}.{seed:x}@fuzz.example"
            n_data += 1
            steps.append(Step("data", _body(rng, mid)))
        elif roll < 0.64:
            steps.append(Step("line", rng.choice([b"RSET", b"rset", b"RSET now"])))
        elif roll < 0.72:
            steps.append(Step("line", rng.choice(VERBS).encode()))
        elif roll < 0.82:
            burst = [
                _content(rng, GARBAGE_ATOMS, rng.randrange(0, 6))
                for _ in range(rng.randrange(1, 5))
            ]
            steps.append(Step("garbage", burst))
        elif roll < 0.87:
            prefix = rng.choice([b"NOOP ", b"MAIL FROM:<", b"RCPT TO:<", b"", b"EHLO "])
            steps.append(Step("line", prefix + b"y" * rng.randrange(1001, 6000)))
        elif roll < 0.90:
            steps.append(Step("line", b""))
        elif roll < 0.93:
            steps.append(Step("end", rng.choice(["shut", "reset", "close"])))
            break
        else:
            steps.append(Step("line", rng.choice([b"NOOP", b"noop", b"QUIT"])))
    return steps[:MAX_STEPS]


# --------------------------------------------------------------------------- the wire


class Wire:
    """One raw client connection that reads CRLF-terminated, possibly multi-line replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        self.buf = b""
        self.lines: list[bytes] = []
        self.eof = False
        self.timeouts = 0

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            self.eof = True
        return not self.eof

    def reply(self) -> tuple[int, list[bytes]] | None:
        """The next complete reply, or None at end of stream or after READ_TIMEOUT."""
        got: list[bytes] = []
        deadline = time.monotonic() + READ_TIMEOUT
        while True:
            while b"\r\n" in self.buf:
                line, self.buf = self.buf.split(b"\r\n", 1)
                self.lines.append(line)
                got.append(line)
                if not REPLY_LINE.match(line) or len(line) == 3 or line[3:4] == b" ":
                    return int(line[:3]) if line[:3].isdigit() else -1, got
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timeouts += 1
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                self.timeouts += 1
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.eof = True
                if self.buf:  # a partial last line is still a reply line to check
                    self.lines.append(self.buf)
                    self.buf = b""
            self.buf += chunk

    def command(self, line: bytes) -> tuple[int, list[bytes]] | None:
        return self.reply() if self.send(line + b"\r\n") else None

    def drain(self) -> None:
        """Read whatever the server still says until it closes (or goes quiet)."""
        while self.reply() is not None:
            pass

    def close(self, how: str = "close") -> None:
        if how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "shut":
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self.drain()
        self.sock.close()


# --------------------------------------------------------------------------- sessions


@dataclass
class Outcome:
    session: int
    commands: int = 0
    lines: list[bytes] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # mid -> "Stored as #N"
    bodies: dict[str, Body] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # a 4xx/5xx reply to the final dot
    unterminated: set[str] = field(default_factory=set)  # the final dot never sent
    unknown: set[str] = field(default_factory=set)  # dot sent, reply lost
    too_long_accepted: list[str] = field(default_factory=list)
    max_rcpts: int = 0
    greeting: int | None = None
    timeouts: int = 0
    eof_early: bool = False


def run_session(port: int, session: int) -> Outcome:
    out = Outcome(session)
    wire = Wire(port)
    try:
        greeting = wire.reply()
        out.greeting = greeting[0] if greeting else None
        rcpts = 0
        for step in _script(SEED, session):
            if wire.eof:
                out.eof_early = True
                break
            if step.kind == "line":
                out.commands += 1
                got = wire.command(step.payload)
                verb = step.payload[:4].upper()
                if got and got[0] == 250 and (verb in (b"RSET", b"HELO", b"EHLO")):
                    rcpts = 0
                elif got and got[0] == 250 and verb == b"RCPT":
                    rcpts += 1
            elif step.kind == "rcpt_flood":
                for i in range(step.payload):
                    out.commands += 1
                    got = wire.command(f"RCPT TO:<flood{i}@help.example.org>".encode())
                    if got is None:
                        break
                    if got[0] == 250:
                        rcpts += 1
            elif step.kind == "garbage":
                # Pipelined: the whole burst and a HELP marker in one write, then read up
                # to the marker's distinctive reply (or the server hanging up).
                out.commands += len(step.payload) + 1
                if wire.send(b"".join(g + b"\r\n" for g in step.payload) + b"HELP\r\n"):
                    while (got := wire.reply()) is not None:
                        if got[1][-1].startswith(b"250 Supported commands"):
                            break
            elif step.kind == "data":
                body: Body = step.payload
                out.commands += 1
                got = wire.command(b"DATA")
                if got is None or got[0] != 354:
                    if got and got[0] == 250:  # a DATA without its body must not "store"
                        out.too_long_accepted.append(f"bare DATA answered {got[1]!r}")
                    continue
                out.max_rcpts = max(out.max_rcpts, rcpts)
                out.bodies[body.mid] = body
                rcpts = 0
                if not wire.send(body.wire) or body.then in ("reset", "close"):
                    (out.unknown if body.terminated else out.unterminated).add(body.mid)
                    wire.close(body.then)
                    break
                if body.then == "shut":
                    wire.sock.shutdown(socket.SHUT_WR)
                got = wire.reply()
                if not body.terminated:
                    out.unterminated.add(body.mid)
                elif got is None:
                    out.unknown.add(body.mid)
                elif (m := STORED.match(got[1][-1])) is not None:
                    out.accepted[body.mid] = int(m.group(1))
                    if body.too_long:
                        out.too_long_accepted.append(body.mid)
                elif got[0] >= 400:
                    out.refused.add(body.mid)
                else:
                    out.unknown.add(body.mid)
                if body.then == "shut":
                    wire.close("shut")
                    break
            elif step.kind == "end":
                wire.close(step.payload)
                break
            out.max_rcpts = max(out.max_rcpts, rcpts)
    finally:
        with contextlib.suppress(OSError):
            wire.sock.close()
    out.lines = wire.lines
    out.timeouts = wire.timeouts
    return out


def fuzz(port: int) -> Iterator[Outcome]:
    stop_at = time.monotonic() + FUZZ_BUDGET
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = []
        for n in range(SESSIONS):
            futures.append(pool.submit(_bounded, port, n, stop_at))
        for future in futures:
            result = future.result()
            if result is not None:
                yield result


def _bounded(port: int, session: int, stop_at: float) -> Outcome | None:
    return run_session(port, session) if time.monotonic() < stop_at else None


# --------------------------------------------------------------------------- the test


def test_front_door_survives_protocol_fuzz(smtp_server, engine: Engine) -> None:
    controller, port = smtp_server()
    started = time.monotonic()
    outcomes = list(fuzz(port))
    fuzz_seconds = time.monotonic() - started

    commands = sum(o.commands for o in outcomes)
    accepted = {mid: pk for o in outcomes for mid, pk in o.accepted.items()}
    bodies = {mid: b for o in outcomes for mid, b in o.bodies.items()}
    refused = set().union(*(o.refused for o in outcomes))
    unterminated = set().union(*(o.unterminated for o in outcomes))
    unknown = set().union(*(o.unknown for o in outcomes))
    print(
        f"\nprotocol fuzz: seed={SEED:#x} sessions={len(outcomes)} commands={commands} "
        f"reply lines={sum(len(o.lines) for o in outcomes)} DATA bodies={len(bodies)} "
        f"(250={len(accepted)} refused={len(refused)} unterminated={len(unterminated)} "
        f"reply lost={len(unknown)}) timeouts={sum(o.timeouts for o in outcomes)} "
        f"in {fuzz_seconds:.1f}s"
    )

    # The budget is generous: every session must have run, each greeted with 220.
    assert len(outcomes) == SESSIONS
    assert [o.session for o in outcomes if o.greeting != 220] == []
    # The fuzz is not vacuous: it stored mail, refused mail and cut DATA short.
    assert len(accepted) >= 10 and refused and unterminated

    # (3) Every reply line, in every session, starts with a three-digit code.
    malformed = [
        (o.session, line) for o in outcomes for line in o.lines if not REPLY_LINE.match(line)
    ]
    assert malformed == []

    # No connection slot or DATA byte is leaked by resets and half-closes: the guard
    # drains to zero, and a full per-address quota of new connections is greeted.
    guard = controller.guard
    deadline = time.monotonic() + 5
    while (guard.connections.total or guard.data.used) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (guard.connections.total, guard.data.used) == (0, 0)
    quota = [Wire(port) for _ in range(guard.connections.max_per_ip)]
    try:
        assert [(w.reply() or (0, []))[0] for w in quota] == [220] * len(quota)
    finally:
        for w in quota:
            w.close("reset")

    # (1) The server keeps answering: a plain client still gets its 250.
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.noop()[0] == 250
        assert client.sendmail("dana@acme.example", ["support@example.com"], make_mail(4242)) == {}

    # Recipient caps and relay policy held under fuzz.
    assert max(o.max_rcpts for o in outcomes) <= MAX_RCPTS
    assert [x for o in outcomes for x in o.too_long_accepted] == []

    # (2) Exactly-once for every 250; nothing stored that was refused or cut short.
    with Session(engine) as session:
        rows = session.exec(select(Message).where(col(Message.message_id).like("fuzz-%"))).all()
        per_mid = Counter(row.message_id for row in rows)
        assert {mid: per_mid[mid] for mid in accepted if per_mid[mid] != 1} == {}
        by_mid = {row.message_id: row for row in rows}
        assert {mid: by_mid[mid].id for mid, pk in accepted.items() if by_mid[mid].id != pk} == {}
        for mid in accepted:
            raw = session.get(RawMessage, by_mid[mid].sha256)
            assert raw is not None and raw.data == bodies[mid].expected, mid
        assert [m for m in per_mid if m in refused | unterminated] == []
        assert {m: c for m, c in per_mid.items() if m in unknown and c > 1} == {}
        assert [m for m in per_mid if m not in bodies] == []  # nothing phantom
        for row in rows:
            assert 1 <= len(row.envelope_to) <= MAX_RCPTS
            assert [a for a in row.envelope_to if not ours(a)] == [], row.message_id
        assert session.exec(select(Message).where(Message.message_id == "m4242@acme.example")).one()
