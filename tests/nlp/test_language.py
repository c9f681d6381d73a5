"""Language detection on support mail: the five desk languages, noise, short text."""

from __future__ import annotations

import pytest

from nlp.language import detect_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        (
            "Hola, desde ayer no puedo entrar a mi cuenta y el correo de recuperación no llega.",
            "es",
        ),
        ("Hallo, seit heute Morgen ist unser Cluster nicht erreichbar. Bitte um Hilfe.", "de"),
        ("Bonjour, nous avons été facturés deux fois ce mois-ci pour le même abonnement.", "fr"),
        ("Olá, não consigo acessar o painel desde ontem, aparece erro de permissão.", "pt"),
        ("Hi, kubectl get pods returns 403 Forbidden on our prod cluster since Monday.", "en"),
    ],
)
def test_the_desk_languages_are_told_apart(text: str, lang: str) -> None:
    assert detect_language(text)[0] == lang


def test_hosts_ids_and_log_lines_do_not_decide_the_language() -> None:
    text = (
        "Hola equipo, el servidor no responde desde esta mañana.\n"
        "db-main-2.prod.acme.io acct-4821 ERROR connection refused 10.0.0.7:5432"
    )
    assert detect_language(text)[0] == "es"


def test_too_short_to_tell_falls_back_to_the_default() -> None:
    assert detect_language("gracias!", default="de") == ("de", 0.0)
    assert detect_language("", default="fr") == ("fr", 0.0)
