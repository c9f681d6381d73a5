"""Draft composition: each rule with the mail that shows it.

Articles here are small hand-written ones (parsed by the real loader), so each test
reads as: this article, this mail → this draft, or no draft and why.
"""

from __future__ import annotations

from nlp.drafting.articles import Article, parse_article
from nlp.drafting.compose import DraftContext, ThreadContext, compose
from nlp.drafting.rationale import evidence
from nlp.types import Analysis, Entity, EvidenceLine, LogFinding, Suggestion

ACCESS = parse_article(
    '''+++
title = "Roles"
intents = ["access_permissions"]
needs = ["account_id"]
[[variants]]
kind = "request"
reply = """
? You asked about {email}.
An owner of the account grants roles under Settings → Members → Roles.
"""
[variants.translations]
es = """
? Pregunta por {email}.
Un propietario de la cuenta concede roles en Settings → Members → Roles.
"""
[[variants]]
kind = "failure"
reply = """
? The {http_status} on {k8s_resource} means the identity lacks a role.
"""
[[log_patterns]]
match = 'forbidden: User "[^"]+" cannot'
means = "Kubernetes RBAC refused the request: no RoleBinding allows it."
[log_patterns.translations]
es = "Kubernetes RBAC rechazó la petición: ningún RoleBinding la permite."
+++
Roles and permissions.''',
    article_id="roles",
)
OUTAGE = parse_article(
    '''+++
title = "Errors"
intents = ["outage_report"]
[[variants]]
kind = "failure"
reply = """
We are aware of the incident and engineers are working on it.
"""
+++
Errors.''',
    article_id="bad-outage",
)
SECURITY = parse_article(
    '''+++
title = "Leaked token"
intents = ["security_report"]
[[variants]]
kind = "security"
reply = """
We have escalated this to our security team now. Revoke the token right away.
"""
+++
Leaks.''',
    article_id="leak",
)
LOGIN = parse_article(
    '''+++
title = "Login"
intents = ["account_login"]
[[variants]]
kind = "failure"
reply = """
Use Forgot password on the sign-in page.
"""
+++
Login.''',
    article_id="login",
)


def analysis(
    text: str,
    *,
    intent: str = "access_permissions",
    confidence: float = 0.9,
    language: str = "en",
    entities: tuple[Entity, ...] = (),
    findings: tuple[LogFinding, ...] = (),
    abstained: bool = False,
) -> Analysis:
    return Analysis(
        model_version="test",
        intent=intent,
        confidence=confidence,
        scores={intent: confidence},
        abstained=abstained,
        entities=entities,
        reply_text=text,
        log_findings=findings,
        language=language,
    )


def ctx(*articles: Article, scores: tuple[float, ...] = (), **extra: object) -> DraftContext:
    scores = scores or tuple(9.0 - 4 * i for i in range(len(articles)))
    suggestions = tuple(
        Suggestion(a.id, a.title, s, ()) for a, s in zip(articles, scores, strict=True)
    )
    return DraftContext(
        customer_name=str(extra.pop("name", "Dana")),
        ticket_id=42,
        subject=str(extra.pop("subject", "Re: Re: access [#42]")),
        suggestions=suggestions,
        articles={a.id: a for a in articles},
        **extra,  # type: ignore[arg-type]
    )


def test_a_grant_request_gets_the_request_variant_and_no_error_text() -> None:
    mail = "Please grant bob@acme.io the deploy role on acct-4821."
    found = (Entity("EMAIL", "bob@acme.io", 13, 24), Entity("ACCOUNT_ID", "acct-4821", 45, 54))
    draft = compose(analysis(mail, entities=found), ctx(ACCESS))
    assert not draft.needs_triage and draft.article_id == "roles"
    assert draft.brief["variant"] == "request"
    assert "You asked about bob@acme.io." in draft.body
    assert "lacks a role" not in draft.body
    assert draft.body.startswith("Hi Dana,") and draft.body.endswith("Best regards,")
    assert draft.subject == "Re: access [#42]"


def test_a_fact_that_was_given_is_never_asked_for_and_a_missing_one_is() -> None:
    given = compose(
        analysis("Please grant the role", entities=(Entity("ACCOUNT_ID", "acct-1", 0, 6),)),
        ctx(ACCESS),
    )
    assert "account or project id" not in given.body and given.brief["missing"] == []
    missing = compose(analysis("Please grant the role"), ctx(ACCESS))
    assert "could you send us your account or project id" in missing.body
    assert missing.brief["missing"] == ["account_id"]
    # A missing fact is asked for in words, never left as a placeholder to block release.
    assert missing.unfilled == () and "[[" not in missing.body


def test_an_optional_line_without_its_value_is_dropped_not_invented() -> None:
    draft = compose(analysis("kubectl get pods fails"), ctx(ACCESS))
    assert draft.brief["variant"] == "failure"
    assert "lacks a role" not in draft.body  # its values (status, resource) were not given
    assert "[[" not in draft.body


def test_the_key_log_line_is_quoted_with_what_it_means() -> None:
    finding = LogFinding(
        attachment="kubectl.log",
        total_lines=40,
        error_lines=1,
        signature="abc",
        template="forbidden <*>",
        evidence=(EvidenceLine(17, 'Error: pods is forbidden: User "ci" cannot list pods'),),
    )
    draft = compose(analysis("kubectl get pods fails", findings=(finding,)), ctx(ACCESS))
    assert "(kubectl.log, line 17)" in draft.body
    assert 'User "ci" cannot list pods' in draft.body
    assert "no RoleBinding allows it" in draft.body
    assert draft.brief["log"]["means"].startswith("Kubernetes RBAC")


def test_spanish_mail_gets_a_spanish_reply_or_none() -> None:
    mail = "Por favor, ¿pueden dar acceso de administrador a bob@acme.io?"
    spanish = compose(analysis(mail, language="es"), ctx(ACCESS))
    assert spanish.body.startswith("Hola Dana:")
    assert "Un propietario de la cuenta" in spanish.body and "Best regards" not in spanish.body
    assert "¿podría enviarnos su id de cuenta" in spanish.body
    german = compose(analysis("Bitte geben Sie Bob Zugriff.", language="de"), ctx(ACCESS))
    assert german.needs_triage and german.body == ""
    assert "no de translation" in german.brief["decision"]
    assert "not English: de" in german.brief["flags"]


def test_an_outage_draft_never_claims_an_undeclared_incident() -> None:
    mail = "Our API returns 503 since 07:00, is something down?"
    draft = compose(analysis(mail, intent="outage_report"), ctx(OUTAGE))
    assert draft.needs_triage and "we are aware" not in draft.body.lower()
    assert "held back" in draft.brief["decision"]
    declared = compose(analysis(mail, intent="outage_report"), ctx(OUTAGE, incident_declared=True))
    assert "We are aware" in declared.body


def test_a_security_report_never_gets_routine_login_text() -> None:
    mail = "Our API token leaked on GitHub and someone logged in to our account. Help!"
    draft = compose(analysis(mail, intent="account_login"), ctx(LOGIN, SECURITY))
    assert draft.article_id == "leak" and "escalated" in draft.body
    assert "Forgot password" not in draft.body
    assert any(flag.startswith("security") for flag in draft.brief["flags"])
    alone = compose(analysis(mail, intent="account_login"), ctx(LOGIN))
    assert alone.needs_triage and "security" in alone.brief["decision"]


def test_an_urgent_or_angry_sender_is_acknowledged() -> None:
    calm = compose(analysis("Please grant the role to bob."), ctx(ACCESS))
    urgent = compose(analysis("URGENT!!! production down, grant the role ASAP"), ctx(ACCESS))
    assert "urgent" not in calm.body
    assert "I understand this is urgent" in urgent.body
    assert urgent.brief["urgent"] is True


def test_an_article_of_another_intent_or_a_close_runner_up_writes_no_body() -> None:
    other = compose(analysis("grant a role", intent="billing"), ctx(ACCESS))
    assert other.needs_triage and "no article tagged for billing" in other.brief["decision"]
    close = compose(analysis("grant a role", confidence=0.7), ctx(ACCESS, LOGIN, scores=(5.0, 6.4)))
    assert close.needs_triage and "does not clearly beat 'login'" in close.brief["decision"]
    unsure = compose(analysis("grant a role", confidence=0.2), ctx(ACCESS))
    assert unsure.needs_triage and "intent uncertain" in unsure.brief["decision"]
    # Just below the threshold, a guess that retrieval agrees with may write...
    agreed = compose(analysis("grant a role", confidence=0.4), ctx(ACCESS))
    assert agreed.article_id == "roles" and "agrees with retrieval" in agreed.brief["decision"]
    # ...but not when the top article answers another intent.
    disagreed = compose(analysis("grant a role", confidence=0.4), ctx(LOGIN, ACCESS))
    assert disagreed.needs_triage
    # The brief still carries what the rep needs first.
    assert unsure.brief["asks"] == [] and unsure.brief["passages"][0]["id"] == "roles"


def test_a_follow_up_does_not_repeat_what_we_already_replied() -> None:
    sent = "Hi Dana,\n\nAn owner of the account grants roles under Settings → Members → Roles."
    thread = ThreadContext(
        entities=(Entity("ACCOUNT_ID", "acct-9", 0, 6, "thread:body"),),
        replies=(sent,),
    )
    draft = compose(analysis("Any update? Please grant it."), ctx(ACCESS, thread=thread))
    assert "Thanks for following up." in draft.body
    assert "Settings → Members → Roles" not in draft.body
    assert "still looking into this" in draft.body
    # The account id given earlier in the thread is not asked for again.
    assert "account or project id" not in draft.body
    assert draft.brief["facts"]["account_id"][0]["source"] == "thread:body"


def test_asks_are_listed_one_line_each() -> None:
    mail = (
        "Hi, our image proxy at https://img.example.com/fetch?url= is open. "
        "Can you grant Bob access? How do I see who has admin? Thanks."
    )
    draft = compose(analysis(mail), ctx(ACCESS))
    assert draft.brief["asks"] == ["Can you grant Bob access?", "How do I see who has admin?"]


def test_rationale_and_evidence_name_the_real_evidence() -> None:
    found = (Entity("ACCOUNT_ID", "acct-4821", 3, 12),)
    draft = compose(analysis("Please grant acct-4821 a role", entities=found), ctx(ACCESS))
    assert draft.rationale.startswith("access_permissions 0.90 — 'acct-4821' in body")
    assert "matched KB 'Roles'" in draft.rationale
    stored = evidence(analysis("x", entities=found), draft)
    assert stored["brief"]["article"] == "roles" and stored["language"] == "en"
    assert stored["entities"][0]["start"] == 3


def test_a_url_given_answers_a_need_for_the_hostname() -> None:
    from nlp.drafting.fill import entity_values

    values = entity_values([Entity("URL", "https://api.acme.io/v1/orders?x=1", 0, 30)])
    assert values["hostname"] == "api.acme.io"
    assert "hostname" not in entity_values([Entity("URL", "http://localhost:8080/", 0, 22)])


def test_a_how_to_question_is_answered_without_asking_for_case_facts() -> None:
    howto = parse_article(
        '+++\ntitle = "Restores"\nintents = ["data_request"]\nneeds = ["hostname"]\n'
        '[[variants]]\nkind = "howto"\nreply = "Restores create a new instance."\n+++\nBody.',
        article_id="restores",
    )
    mail = "How far back can we restore, and only into a new instance?"
    draft = compose(analysis(mail, intent="data_request"), ctx(howto))
    assert draft.brief["kind"] == "howto" and "Restores create a new instance." in draft.body
    assert "could you send us" not in draft.body
