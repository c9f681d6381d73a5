"""Reading a customer's new text the way a rep skims it: what do they ask, what kind of
mail is it, is it urgent, is it a follow-up, is it about security or legal matters?

Cue lists, not a model: every flag must be explainable to a rep ("urgent: 'P1',
'production down'") and work the same in the five desk languages. The cues are
deliberately conservative; a missed cue costs an acknowledgement line, a false one
puts "I understand this is urgent" in a calm customer's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A sentence ends at . ! ? followed by a blank or the end; "example.com/fetch?url=" does
# not end one.
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?]+(?=[^\s.!?]))+(?:[.!?]+|$)", re.MULTILINE)
_ASK_CUES = re.compile(
    r"\b(?:please|pls|could you|can you|would you|can we|could we|is it possible|"
    r"we need|i need|we'd like|i'd like|we would like|i would like|we want|kindly|"
    r"por favor|podr[ií]an?|pueden|necesitamos|necesito|quisi[ée]ramos|"
    r"bitte|k[öo]nnten sie|k[öo]nnen sie|wir brauchen|wir ben[öo]tigen|"
    r"pourriez|pouvez-vous|merci de|nous avons besoin|nous souhaitons|"
    r"poderiam|podem|pode|precisamos|gostar[ií]amos)\b",
    re.IGNORECASE,
)
_REQUEST_CUES = re.compile(
    r"\b(?:grant|give|add|remove|revoke|invite|increase|raise|bump|extend|enable|disable|"
    r"delete|export|close|cancel|refund|change|upgrade|downgrade|transfer|restore|"
    r"whitelist|allowlist|request|add support|support for|"
    r"conceder|dar|a[ñn]adir|eliminar|aumentar|ampliar|exportar|borrar|reembols|cambiar|"
    r"erh[öo]hen|hinzuf[üu]gen|entfernen|l[öo]schen|exportieren|erstatt|[äa]ndern|"
    r"augmenter|ajouter|supprimer|exporter|rembours|modifier|accorder|"
    r"aumentar|adicionar|remover|excluir|exportar|reembols|alterar|conceder)\w*",
    re.IGNORECASE,
)
_HOWTO_CUES = re.compile(
    r"\b(?:how (?:do|can|should|to|far|long|many|much|often)|what is the (?:best|right) way|"
    r"is there a way|where can i|"
    r"c[óo]mo (?:puedo|se|podemos)|wie (?:kann|k[öo]nnen)|gibt es eine m[öo]glichkeit|"
    r"comment (?:puis-je|peut-on|faire)|como (?:posso|fa[çc]o|podemos))\b",
    re.IGNORECASE,
)
_FAILURE_CUES = re.compile(
    r"\b(?:error|errors|fail(?:s|ed|ing|ure)?|broken|down|not working|doesn't work|"
    r"does not work|cannot|can't|unable|timeout|timed out|refused|crash\w*|denied|"
    r"forbidden|exception|5\d\d|4\d\d|outage|unreachable|slow|hangs?|"
    r"falla|fallo|error|no funciona|no puedo|ca[ií]do|lento|"
    r"fehler|funktioniert nicht|kann nicht|ausgefallen|langsam|"
    r"erreur|[ée]chec|ne fonctionne pas|impossible|en panne|lent|"
    r"erro|falha|n[ãa]o funciona|n[ãa]o consigo|fora do ar|lento)\b",
    re.IGNORECASE,
)
_SECURITY_CUES = re.compile(
    r"\b(?:vulnerabilit\w+|cve-\d{4}-\d+|exploit\w*|leak(?:ed)?|exposed|compromis\w+|"
    r"hacked|breach|brute[- ]?force|suspicious (?:login|activity|sign-?in)|phishing|abuse|"
    r"malware|stolen|unauthori[sz]ed access|account takeover|"
    r"failed log-?ins?|(?:responsible|coordinated) disclosure|disclosure date|idor|ssrf|xss|"
    r"csrf|rce|sql injection|remote code execution|privilege escalation|"
    r"someone (?:logged|signed) (?:in|into)|(?:didn't|did not|never) (?:log|sign)(?:ged)? in|"
    r"unknown (?:location|device|ip)|unrecogni[sz]ed (?:login|sign-?in|device)|wasn't me|"
    r"alguien (?:entr[óo]|inici[óo] sesi[óo]n)|jemand hat sich (?:eingeloggt|angemeldet)|"
    r"quelqu'un s'est connect[ée]|algu[ée]m (?:entrou|acessou)|"
    r"vulnerabilidad|filtrad\w+|comprometid\w+|sicherheitsl[üu]cke|kompromittiert|"
    r"fuite|compromis|vuln[ée]rabilit[ée]|vazad\w+|comprometid\w+)\b",
    re.IGNORECASE,
)
_LEGAL_CUES = re.compile(
    r"\b(?:gdpr|dsgvo|rgpd|lgpd|dpa|data processing agreement|subpoena|lawyer|legal|"
    r"data subject|right to (?:erasure|access)|delete (?:all )?(?:our|my) data|"
    r"auftragsverarbeitung|rechtsanwalt|avocat|abogado|advogado)\b",
    re.IGNORECASE,
)
_URGENT_CUES = re.compile(
    r"\b(?:urgent\w*|asap|immediately|right now|p1|sev ?1|sev-1|critical|emergency|"
    r"production (?:is )?down|prod (?:is )?down|all (?:our )?customers|losing money|"
    r"urgente|inmediato|dringend|sofort|produktion steht|imm[ée]diatement|urgence|"
    r"imediato|produ[çc][ãa]o parada)\b",
    re.IGNORECASE,
)
_ANGRY_CUES = re.compile(
    r"\b(?:unacceptable|ridiculous|furious|fed up|third time|again and again|still no answer|"
    r"no one (?:has )?(?:answered|replied)|worst|terrible|disappointed|cancel (?:our|my) "
    r"(?:contract|subscription)|inaceptable|inakzeptabel|inadmissible|inaceit[áa]vel)\b",
    re.IGNORECASE,
)
_FOLLOWUP_CUES = re.compile(
    r"\b(?:any update|any news|still (?:failing|broken|waiting|happening|down)|following up|"
    r"follow up|checking in|as requested|you asked for|here (?:is|are) the|"
    r"alguna novedad|novedades|sigue fallando|seguimos esperando|"
    r"gibt es neuigkeiten|neuigkeiten|immer noch|wie gew[üu]nscht|"
    r"des nouvelles|toujours (?:pas|en panne)|comme demand[ée]|"
    r"alguma novidade|novidades|continua (?:falhando|com erro)|conforme solicitado)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Reading:
    """What the new text asks and signals, each flag with the words that raised it."""

    asks: tuple[str, ...]
    kind: str  # request | failure | howto | security
    urgent: tuple[str, ...] = ()
    angry: tuple[str, ...] = ()
    security: tuple[str, ...] = ()
    legal: tuple[str, ...] = ()
    followup: tuple[str, ...] = ()


def _sentences(text: str) -> list[str]:
    # Mail wraps lines at ~72 columns: a single newline continues the sentence.
    text = re.sub(r"(?<=\S)[ \t]*\n(?=[ \t]*[^\s>*\-•\d])", " ", text)
    out = []
    for match in _SENTENCE.finditer(text):
        sentence = " ".join(match.group(0).split())
        if len(sentence) >= 6:
            out.append(sentence)
    return out


def _cues(pattern: re.Pattern[str], text: str, limit: int = 3) -> tuple[str, ...]:
    seen: list[str] = []
    for match in pattern.finditer(text):
        word = match.group(0).lower()
        if word not in seen:
            seen.append(word)
        if len(seen) >= limit:
            break
    return tuple(seen)


def find_asks(text: str, *, limit: int = 5) -> tuple[str, ...]:
    """Sentences that ask something: a question, or a request cue ("please grant…")."""
    asks = []
    for sentence in _sentences(text):
        if sentence.rstrip().endswith("?") or _ASK_CUES.search(sentence):
            asks.append(sentence[:200])
        if len(asks) >= limit:
            break
    return tuple(asks)


def read_mail(text: str, subject: str = "", *, intent: str = "") -> Reading:
    """Asks, kind and flags of one customer's new text (quotes already stripped)."""
    whole = f"{subject}\n{text}"
    asks = find_asks(text)
    security = _cues(_SECURITY_CUES, whole)
    # One cue in a login mail, or two of them anywhere, make it a security report
    # whatever the classifier said: a data request that mentions a breach is about it.
    if (
        intent == "security_report"
        or (security and intent in ("", "account_login", "access_permissions"))
        or len(security) >= 2
    ):
        kind = "security"
    else:
        ask_text = " ".join(asks)
        if _HOWTO_CUES.search(whole):
            kind = "howto"
        elif _REQUEST_CUES.search(ask_text) and not _FAILURE_CUES.search(ask_text):
            kind = "request"
        elif _FAILURE_CUES.search(whole):
            kind = "failure"
        elif intent == "feature_request" or _REQUEST_CUES.search(whole):
            kind = "request"
        else:
            kind = "howto"
    return Reading(
        asks=asks,
        kind=kind,
        urgent=_cues(_URGENT_CUES, whole) + (("!!!",) if "!!!" in text else ()),
        angry=_cues(_ANGRY_CUES, whole),
        security=security,
        legal=_cues(_LEGAL_CUES, whole),
        followup=_cues(_FOLLOWUP_CUES, whole),
    )
