"""Article files: variants, translations, needs and log patterns read strictly.

Every mistake names the file and the problem, so a typo never silently turns an
intent's drafts into needs_triage.
"""

from __future__ import annotations

import pytest

from nlp.drafting.articles import KbError, parse_article

GOOD = '''+++
title = "Roles"
intents = ["access_permissions"]
needs = ["account_id"]
[[variants]]
kind = "request"
reply = """
? You asked about {email}.
An owner grants roles.
"""
[variants.translations]
de = "Ein Besitzer vergibt Rollen."
[[log_patterns]]
match = 'forbidden: User "[^"]+"'
means = "RBAC refused it."
+++
Body.'''


def test_a_full_article_loads() -> None:
    article = parse_article(GOOD, article_id="roles", where="kb/roles.md")
    assert article.needs == ("account_id",)
    variant = article.variant("request")
    assert variant is not None and variant.texts["de"] == "Ein Besitzer vergibt Rollen."
    assert article.variant("howto") is variant  # no howto: the first variant answers
    assert article.log_patterns[0].pattern.search('Error: forbidden: User "ci" cannot')
    assert article.reply.startswith("? You asked about {email}.")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "request"', 'kind = "question"'), "kind must be one of"),
        (("de = ", "ru = "), "unknown language 'ru'"),
        (
            ('needs = ["account_id"]', 'needs = ["acount_id"]'),
            "unknown fact(s) in needs: acount_id",
        ),
        (("match = 'forbidden", "match = '(forbidden"), "not a valid regex"),
        (("{email}", "{mail}"), "unknown placeholder(s) {mail}"),
        (
            ('[[variants]]\nkind = "request"', '[[variants]]\ntone = "x"\nkind = "request"'),
            "allowed keys are kind, reply, translations",
        ),
        (('title = "Roles"', 'title = "Roles"\nreply = "x"'), "either 'reply' or [[variants]]"),
    ],
)
def test_mistakes_name_the_file_and_the_problem(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(KbError) as err:
        parse_article(text, article_id="roles", where="kb/roles.md")
    assert str(err.value).startswith("kb/roles.md") and message in str(err.value)


def test_the_older_single_reply_is_one_failure_variant() -> None:
    text = '+++\ntitle = "Old"\nintents = ["billing"]\nreply = "Pay {ticket_ref}."\n+++\nBody.'
    article = parse_article(text, article_id="old")
    assert [v.kind for v in article.variants] == ["failure"]
    assert article.reply == "Pay {ticket_ref}."
