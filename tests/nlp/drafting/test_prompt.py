"""The chat messages for a model drafter: the rules, and only the mail, thread, brief
and passages."""

from __future__ import annotations

from typing import Any

from nlp.drafting.prompt import build_messages

MAIL = "Since 09:00 our uploads to files.example.com fail with 403. Can you check?"
BRIEF: dict[str, Any] = {
    "asks": ["Can you check?"],
    "kind": "failure",
    "facts": {"hostname": [{"value": "files.example.com", "source": "body"}]},
    "log": {"text": "PUT /bucket 403 Forbidden", "means": "the key lacks write access"},
    "missing": ["account id"],
    "flags": ["urgent: fail"],
    "passages": [{"id": "kb-perm", "title": "Permissions", "score": 7.25, "kind": "article"}],
    "decision": "article kb-perm wrote the body",
    "article": "kb-perm",
    "variant": "default",
    "urgent": True,
    "language": "de",
}


def messages(**overrides: Any) -> list[dict[str, str]]:
    args: dict[str, Any] = {
        "mail": MAIL,
        "thread": ["We added a new bucket last week.", "  "],
        "brief": BRIEF,
        "passages": [("Permissions", "A key needs the writer role to upload.")],
        "language": "de",
        "customer_name": "Jonas",
    }
    args.update(overrides)
    return build_messages(**args)


def test_a_system_and_a_user_message() -> None:
    roles = [m["role"] for m in messages()]
    assert roles == ["system", "user"]


def test_the_system_message_holds_the_rules_and_the_language() -> None:
    system = messages()[0]["content"]
    assert "in German" in system and "Jonas" in system
    for rule in ("each thing the customer asks", "Use only facts", "refund", "ETAs"):
        assert rule in system
    assert "incident" in system and "placeholders" in system and "signature" in system
    assert MAIL not in system


def test_the_user_message_holds_mail_thread_brief_and_passages() -> None:
    user = messages()[1]["content"]
    for text in (
        MAIL,
        "We added a new bucket last week.",
        "Can you check?",
        "files.example.com",
        "PUT /bucket 403 Forbidden",
        "the key lacks write access",
        "account id",
        "urgent: fail",
        "### Permissions",
        "A key needs the writer role to upload.",
    ):
        assert text in user


def test_the_prompt_holds_nothing_else() -> None:
    user = messages()[1]["content"]
    for internal in ("kb-perm", "7.25", "wrote the body", "default", "True", "body"):
        assert internal not in user
    assert "Message 2" not in user  # blank thread entries are dropped


def test_an_empty_thread_and_no_passages_say_so_without_inventing_content() -> None:
    user = messages(thread=[], passages=[], brief={})[1]["content"]
    assert "Earlier messages" not in user
    assert "(none found)" in user
    assert user.startswith("## The customer's new mail\n\n" + MAIL)


def test_unknown_language_codes_pass_through_and_no_name_means_no_name() -> None:
    system = messages(language="nl", customer_name="  ")[0]["content"]
    assert "in nl" in system
    assert "addressed to the customer." in system


def test_long_texts_are_clipped() -> None:
    user = messages(mail="x" * 20000)[1]["content"]
    assert len(user) < 12000 and "[…]" in user
