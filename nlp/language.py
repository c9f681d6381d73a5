"""Which language a customer wrote in, so the reply can be written in it.

py3langid's model ships inside its wheel (no download, works offline) and classifies a
short mail in well under a millisecond once loaded (about 1.5 s, once per process,
on first use). It is restricted to the languages a support desk meets most, which
makes short texts far more reliable than a 97-language vote. Very short or uncertain
text ("any update?", "gracias") falls back to the caller's default — for a follow-up,
the language of the ticket's earlier mail.
"""

from __future__ import annotations

import re
import threading
from typing import Any

LANGUAGES = ("en", "es", "de", "fr", "pt", "it", "nl")
MIN_PROBABILITY = 0.80
MIN_WORDS = 3
MAX_CHARS = 240
_WORD = re.compile(r"[^\W\d_]{2,}")
# Tokens that are not language: addresses, hosts, paths, ids, code.
_NOISE = re.compile(r"\S*[@/\\_=<>{}\[\]]\S*|\S+\.\S+|\S*\d\S*")
# A few function words per language: enough to see that a text is plainly English.
_STOPWORDS = {
    "en": "the and is are was have with this that not for you our we it please",
    "de": "der die das und ist nicht mit ich wir sie ein eine bitte auf für",
    "fr": "le la les et est pas avec nous vous une des pour merci sur je",
    "es": "el los las y es no con una por para que gracias nosotros del",
    "pt": "o os as e é não com uma por para que obrigado obrigada nós do da",
    "nl": "de het een en is niet met wij ik voor van dat bedankt graag",
}
_STOPWORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _words in _STOPWORDS.items():
    for _w in _words.split():
        _STOPWORD_LANGS[_w] = (*_STOPWORD_LANGS.get(_w, ()), _lang)
_lock = threading.Lock()
_identifier: Any = None


def _model() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                ident.set_languages(list(LANGUAGES))
                _identifier = ident
    return _identifier


def _plainly_english(words: list[str]) -> bool:
    """Most desk mail is English: several English function words and not one of another
    language's settle it without the classifier (a third of the analysis cost)."""
    english = other = 0
    for word in words:
        langs = _STOPWORD_LANGS.get(word, ())
        if "en" in langs:
            english += 1
        elif langs:
            other += 1
    return english >= 5 and other == 0


def detect_language(text: str, *, default: str = "en") -> tuple[str, float]:
    """(language code, probability); `default` with 0.0 when the text cannot tell."""
    # The opening says which language it is; the classifier's cost grows with length.
    prose = _NOISE.sub(" ", text[: MAX_CHARS * 2])[:MAX_CHARS]
    words = _WORD.findall(prose.lower())
    if len(words) < MIN_WORDS:
        return default, 0.0
    if _plainly_english(words):
        return "en", 1.0
    lang, prob = _model().classify(prose)
    if float(prob) < MIN_PROBABILITY:
        return default, float(prob)
    return str(lang), float(prob)
