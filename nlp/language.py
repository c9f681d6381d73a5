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


def detect_language(text: str, *, default: str = "en") -> tuple[str, float]:
    """(language code, probability); `default` with 0.0 when the text cannot tell."""
    # The opening says which language it is; the classifier's cost grows with length.
    prose = _NOISE.sub(" ", text[: MAX_CHARS * 2])[:MAX_CHARS]
    if len(_WORD.findall(prose)) < MIN_WORDS:
        return default, 0.0
    lang, prob = _model().classify(prose)
    if float(prob) < MIN_PROBABILITY:
        return default, float(prob)
    return str(lang), float(prob)
