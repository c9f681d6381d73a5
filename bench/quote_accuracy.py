"""Accuracy of reply/quote/signature stripping on public reply corpora, beside a baseline.

Three tasks, each scored as exact match after whitespace normalisation and as a
token-overlap F1 (multiset of whitespace tokens), always next to a naive baseline run
on the same inputs in the same run:

1. talon standard replies (`mailgun_talon_replies/.../standard_replies/*.eml`): the
   text/plain part; expected = the fixture's `*_reply_text` file, else "Hello" (talon's
   own test convention). talon's expectation keeps signatures, so `strip_quotes` is
   scored here.
2. talon signature bodies (`signature/emails/stripped/<name>_body` + `<name>_signature`):
   expected = the body without its signature suffix; `strip_signature` is scored, with
   the sender name from `<name>_sender`. Baseline: cut at a "-- " line only.
3. email_reply_parser bodies (`reply_quote_bodies_zapier/test/emails/*.txt`): they ship
   without expected texts, so EXPECTED below is our labelling of "what the customer
   wrote" (quotes and signatures removed), following the upstream test assertions where
   they exist. `strip_reply` is scored.

4. talon HTML replies (`html_replies/*.html`, nine clients): converted with
   `nlp.text.html_to_text` (blockquotes become `>` lines), then `strip_quotes`;
   expected = "Hi. I am fine. Thanks, Alex", the reply talon's HTML tests expect.

The naive baseline cuts at the first line that starts with ">" or matches "On … wrote".

Run: .venv/bin/python bench/quote_accuracy.py [--data /work/shared/data] [-v]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.quotes import strip_quotes, strip_reply, strip_signature
from nlp.text import html_to_text

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

EXPECTED: dict[str, str] = {
    "correct_sig": "this is an email with a correct -- signature.",
    "email_1_1": "Hi folks What is the best way to clear a Riak bucket of all key, values after "
    "running a test? I am currently using the Java HTTP API.",
    "email_1_3": "Oh thanks. Having the function would be great.",
    "email_1_4": "Awesome! I haven't had another problem with it.",
    "email_1_6": "I get proper rendering as well.",
    "email_1_7": ":+1:",
    "email_1_8": "I will reply under this one and under this.",
    "email_2_1": "Outlook with a reply",
    "email_2_2": "Outlook with a reply directly above line",
    "email_2_3": "Outlook with a reply above headers using unusual format",
    "email_BlackBerry": "Here is another email",
    "email_bullets": "test 2 this should list second and have spaces and retain this "
    "formatting - how about bullets - and another",
    "email_gmail": "This is a test for inbox replying to a github message.",
    "email_headers_no_delimiter": "And another reply!",
    "email_iPhone": "Here is another email",
    "email_multi_word_sent_from_my_mobile_device": "Here is another email",
    "email_one_is_not_on": "Thank, this is really helpful. One outstanding question I had: "
    "Locally (on development), when I run...",
    "email_partial_quote_header": "On your remote host you can run: telnet 127.0.0.1 52698 "
    "This should connect to TextMate (on your Mac, via the tunnel). If that fails, the "
    "tunnel is not working.",
    "greedy_on": "On your remote host you can run: telnet 127.0.0.1 52698 This should "
    "connect to TextMate (on your Mac, via the tunnel). If that fails, the tunnel is not "
    "working.",
    "pathological": "I think you're onto something. I will try to fix the problem as soon "
    "as I get back to a computer.",
}
# Bodies with nothing to strip: the expected reply is the whole text.
UNCHANGED = {
    "email_1_5",
    "email_sent_from_my_not_signature",
    "email_sig_delimiter_in_middle_of_line",
}
# email_1_2: a bottom/inline reply whose expected text is the customer's lines only.
INLINE_1_2_START, INLINE_1_2_END = "You can list the keys", 'delete them all individually."'

_NAIVE_CUT = re.compile(r"^\s*>|^\s*On\b.*\bwrote:?\s*$")


def naive(text: str) -> str:
    out: list[str] = []
    for line in text.split("\n"):
        if _NAIVE_CUT.match(line):
            break
        out.append(line)
    return "\n".join(out).strip() or text


def naive_signature(text: str) -> str:
    return re.split(r"(?m)^-- ?$", text, maxsplit=1)[0].strip()


def norm(text: str) -> str:
    return " ".join(text.split())


def f1(predicted: str, expected: str) -> float:
    p, e = Counter(predicted.split()), Counter(expected.split())
    overlap = sum((p & e).values())
    if not p or not e:
        return float(p == e)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(e.values())
    return 2 * precision * recall / (precision + recall)


Case = tuple[str, str, str, str]  # (name, input, expected, sender)


def talon_standard(root: Path) -> list[Case]:
    folder = root / "email/mailgun_talon_replies/tests/fixtures/standard_replies"
    cases: list[Case] = []
    for path in sorted(folder.glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain",))
        if part is None:
            continue
        text = str(part.get_content())  # type: ignore[attr-defined]
        expected_file = path.with_name(path.stem + "_reply_text")
        expected = expected_file.read_text().strip() if expected_file.exists() else "Hello"
        cases.append((path.stem, text, expected, ""))
    return cases


def talon_signatures(root: Path) -> list[Case]:
    folder = root / "email/mailgun_talon_replies/tests/fixtures/signature/emails/stripped"
    cases: list[Case] = []
    for body_file in sorted(folder.glob("*_body")):
        name = body_file.name[: -len("_body")]
        body = body_file.read_text()
        signature = (folder / f"{name}_signature").read_text().strip()
        sender_file = folder / f"{name}_sender"
        sender = sender_file.read_text().strip() if sender_file.exists() else ""
        stripped = body.rstrip()
        if signature and stripped.endswith(signature):
            stripped = stripped[: -len(signature)]
        cases.append((name, body, stripped.strip(), sender))
    return cases


def zapier(root: Path) -> list[Case]:
    folder = root / "email/reply_quote_bodies_zapier/test/emails"
    cases: list[Case] = []
    for path in sorted(folder.glob("*.txt")):
        text = path.read_text()
        if path.stem in EXPECTED:
            expected = EXPECTED[path.stem]
        elif path.stem in UNCHANGED:
            expected = text
        elif path.stem == "email_1_2":
            body = text[text.index(INLINE_1_2_START) : text.index(INLINE_1_2_END)]
            expected = "Hi, " + body + INLINE_1_2_END
        else:
            continue
        cases.append((path.stem, text, expected, ""))
    return cases


def talon_html(root: Path) -> list[Case]:
    folder = root / "email/mailgun_talon_replies/tests/fixtures/html_replies"
    expected = "Hi. I am fine.\n\nThanks,\nAlex"
    return [
        (p.stem, html_to_text(p.read_text("utf-8", errors="replace")), expected, "")
        for p in sorted(folder.glob("*.html"))
    ]


def score(
    title: str,
    cases: list[Case],
    ours: Callable[[str, str], str],
    baseline: Callable[[str], str],
    verbose: bool,
) -> tuple[int, int, int]:
    exact = base_exact = 0
    f_ours = f_base = 0.0
    for name, text, expected, sender in cases:
        got, base = ours(text, sender), baseline(text)
        ok = norm(got) == norm(expected)
        exact += ok
        base_exact += norm(base) == norm(expected)
        f_ours += f1(norm(got), norm(expected))
        f_base += f1(norm(base), norm(expected))
        if verbose and not ok:
            print(f"  MISS {name}: got {norm(got)[:120]!r}\n       want {norm(expected)[:120]!r}")
    n = max(len(cases), 1)
    print(
        f"{title:<34} n={len(cases):>3}  exact ours {exact / n:6.1%}  baseline "
        f"{base_exact / n:6.1%}   token-F1 ours {f_ours / n:.3f}  baseline {f_base / n:.3f}"
    )
    return exact, base_exact, len(cases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    totals = [
        score(
            "talon standard replies (quotes)",
            talon_standard(args.data),
            lambda t, s: strip_quotes(t),
            naive,
            args.verbose,
        ),
        score(
            "talon signature bodies (signature)",
            talon_signatures(args.data),
            lambda t, s: strip_signature(t, sender_name=s),
            naive_signature,
            args.verbose,
        ),
        score(
            "email_reply_parser bodies (reply)",
            zapier(args.data),
            lambda t, s: strip_reply(t, sender_name=s),
            naive,
            args.verbose,
        ),
        score(
            "talon HTML replies (quotes)",
            talon_html(args.data),
            lambda t, s: strip_quotes(t),
            naive,
            args.verbose,
        ),
    ]
    ours, base, n = (sum(col) for col in zip(*totals, strict=True))
    print(f"{'all':<34} n={n:>3}  exact ours {ours / n:6.1%}  baseline {base / n:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
