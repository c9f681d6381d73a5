"""The regex table: one (label, pattern) per way an entity shows up in support mail.

Every label is one named alternative of ONE compiled pattern (see `extract.py` for why
not a spaCy ruler), so order matters: at one start position the first alternative that
matches wins, and the table is ordered most specific first (a URL before the host name
inside it, "version 1.2.3.4" before the dotted quad, an account id before a dotless
host name). Where a label needs context ("HTTP 503", "account id 4821-9932", "host
db-main-2") the context is matched too, but the entity is the inner `v` group only.

Labels ending in "~" are internal: they need a check of their own after matching
(`validate.py`) and are reported under the label before the "~".
"""

from __future__ import annotations

from nlp.entities.words import COMPONENTS, MAJOR_ONLY

LABELS = (
    "HOSTNAME",
    "IP",
    "URL",
    "EMAIL",
    "HTTP_STATUS",
    "ERROR_CODE",
    "VERSION",
    "K8S_RESOURCE",
    "CLOUD_REGION",
    "ACCOUNT_ID",
    "CVE",
    "EXCEPTION",
    "TIMESTAMP",
    "PRODUCT",
    "SERVICE",
)
BARE_HOST = "HOSTNAME~"  # a dotless name after a host word: checked, reported as HOSTNAME

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTHS_LONG = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
)
_DAYS_LONG = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DIRS = "north|south|east|west|central|northeast|southeast|northwest|southwest"
_AZURE = (
    "eastus|eastus2|eastus3|westus|westus2|westus3|centralus|northcentralus|southcentralus|"
    "westcentralus|northeurope|westeurope|uksouth|ukwest|francecentral|francesouth|"
    "germanywestcentral|germanynorth|swedencentral|switzerlandnorth|switzerlandwest|"
    "norwayeast|norwaywest|polandcentral|italynorth|spaincentral|eastasia|southeastasia|"
    "japaneast|japanwest|koreacentral|koreasouth|australiaeast|australiasoutheast|"
    "australiacentral|centralindia|southindia|westindia|brazilsouth|canadacentral|"
    "canadaeast|uaenorth|uaecentral|qatarcentral|southafricanorth|israelcentral|mexicocentral"
)
_K8S_KINDS = (
    "pods?|po|deployments?(?:\\.apps)?|deploy|statefulsets?(?:\\.apps)?|sts|"
    "daemonsets?(?:\\.apps)?|ds|replicasets?(?:\\.apps)?|rs|services?|svc|namespaces?|ns|"
    "jobs?(?:\\.batch)?|cronjobs?(?:\\.batch)?|configmaps?|cm|secrets?|ingress(?:es)?|ing|"
    "nodes?|no|persistentvolumeclaims?|pvc|persistentvolumes?|pv|"
    "horizontalpodautoscalers?|hpa|serviceaccounts?|sa"
)
_ERRNO = (
    "ECONNRESET|ECONNREFUSED|ECONNABORTED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EADDRINUSE|"
    "EADDRNOTAVAIL|EACCES|EPERM|ENOENT|EPIPE|EAGAIN|EMFILE|ENFILE|ENOSPC|ENOMEM|EEXIST|"
    "EISDIR|ENOTDIR|EROFS|EBUSY|EINVAL|EIO|ENOTFOUND|EAI_AGAIN|EPROTO|ESHUTDOWN|EDQUOT"
)
_K8S_REASONS = (
    "OOMKilled|CrashLoopBackOff|ImagePullBackOff|ErrImagePull|CreateContainerConfigError|"
    "CreateContainerError|InvalidImageName|ContainerCannotRun|DeadlineExceeded|"
    "FailedScheduling|FailedMount|NodeNotReady|Evicted(?=\\s|:|$)"
)
_GRPC = (
    "DEADLINE_EXCEEDED|RESOURCE_EXHAUSTED|PERMISSION_DENIED|UNAUTHENTICATED|"
    "FAILED_PRECONDITION|INVALID_ARGUMENT|ALREADY_EXISTS|DATA_LOSS|OUT_OF_RANGE"
)
# Cloud APIs answer with CamelCase codes that name no exception class.
_CLOUD_CODES = (
    "AccessDenied|NoSuchBucket|NoSuchKey|NoSuchUpload|InvalidAccessKeyId|"
    "SignatureDoesNotMatch|ExpiredToken|InvalidToken|RequestTimeTooSkewed|SlowDown|"
    "RequestLimitExceeded|UnauthorizedOperation|InvalidClientTokenId|AuthFailure|"
    "InsufficientInstanceCapacity|InvalidParameterValue|BucketAlreadyExists|QuotaExceeded|"
    "AuthorizationHeaderMalformed|MissingAuthenticationToken|ThrottlingError|"
    "AuthorizationFailed|ResourceNotFound|SubscriptionNotFound|InvalidAuthenticationToken"
)
_REASONS = (
    "Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Request Timeout|"
    "Conflict|Gone|Payload Too Large|Unprocessable Entity|Too Many Requests|"
    "Internal Server Error|Not Implemented|Bad Gateway|Service Unavailable|Gateway Timeout"
)
_CAMEL = r"[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+"
# Words after which a dotless name is a host: "connecting to db-main-2", "node worker-3".
_HOST_WORDS = (
    r"(?i:(?:connect(?:ing|ed|ion)?|ssh(?:ing)?|ping(?:ing)?|resolv(?:e|es|ing)|reach(?:ing)?)"
    r"\s{1,3}(?:to\s{1,3}|into\s{1,3})?(?:the\s{1,3})?(?:host|server|node|machine|vm)?\s{0,3}|"
    r"(?:host(?:name)?|server|node|machine|instance|vm|replica|primary|standby|serveur|"
    r"database|balancer|endpoint|proxy|broker|datenbank|base de donn[ée]es|base de datos|"
    r"cluster|cl[úu]ster|banco|distribution|postgres(?:ql)?|mysql|mariadb|redis|mongodb|"
    r"servidor|knoten|noeud|nœud|nodo|rechner)s?(?:\s{1,3}is)?\s{0,3}[:=|]?\s{0,3}\"?)"
)
_STATUS_WORDS = (
    r"https?(?:[ _-]?(?:status|code|error|response))?|status(?:[ _-]?code)?|"
    r"response(?:[ _-]?code)?|returned|returns|returning|responded(?:\s+with)?|"
    r"got\s+an?|received\s+an?|throws|error\s+code|statuscode|antwortet\s+mit"
)
_VERSION_TAIL = r"(?:-[0-9A-Za-z]{1,20}(?:\.[0-9A-Za-z]{1,20}){0,4})?"

# Shipped account id forms; `EntitySettings.account_id_patterns` adds the operator's own.
DEFAULT_ACCOUNT_ID_RULES: tuple[tuple[str, str], ...] = (
    (
        "ACCOUNT_ID",
        r"\b(?i:aws[ _-]?account(?:[ _-]?(?:id|number))?|account[ _-]?(?:id|number|no\.?|#))"
        r"\s{0,3}[:=#]?\s{0,3}(?P<v>\d{12})\b",
    ),
    ("ACCOUNT_ID", r"\barn:aws[\w-]{0,16}:[\w-]{0,64}:[\w-]{0,32}:(?P<v>\d{12}):"),
    ("ACCOUNT_ID", rf"\b(?i:tenant[ _-]?id)\s{{0,3}}[:=]?\s{{0,3}}\"?(?P<v>{_UUID})\b"),
    ("ACCOUNT_ID", r"\bacct_[A-Za-z0-9]{6,64}\b"),
    # acct-4821, acct_9f3k2, org-77123, prj-alpha-42: a known prefix and a digit somewhere.
    (
        "ACCOUNT_ID",
        r"(?<![./@-])\b(?:acct|org|prj|proj|cust|tenant|ws)[-_](?=[A-Za-z0-9-]{0,60}\d)"
        r"[A-Za-z0-9]{1,40}(?:-[A-Za-z0-9]{1,40}){0,4}(?![\w-]|\.\w)",
    ),
    # prj-shipfast-prod, org-acme-eu: a project or org slug of two or more words, after
    # the word project/org or alone (a one-word "org-wide" is prose, not an id).
    (
        "ACCOUNT_ID",
        r"(?<![./@-])\b(?:prj|proj|org|tenant|ws)-[a-z][a-z0-9]{1,30}(?:-[a-z0-9]{1,30}){1,4}"
        r"(?![\w-]|\.\w)",
    ),
    # "account 12345678", "Account ID 4821-9932", "Kundennummer: 99812", "compte 4821-9932".
    (
        "ACCOUNT_ID",
        r"\b(?i:(?:account|acct|konto|compte|cuenta|conta)(?:[ _-]?(?:id|number|no\.?|nr\.?|"
        r"#|nummer|num[eé]ro))?|customer[ _-]?(?:id|number|no\.?)|kundennummer|"
        r"kunden-?nr\.?|num[eé]ro\s+de\s+(?:compte|client))"
        r"\s{0,3}[:=#]?\s{0,3}(?P<v>\d{4,12}(?:-\d{3,8}){0,3})(?![\w-]|[.,]\d)",
    ),
)

# Most specific first: at one start position the first alternative that matches wins.
RULES: tuple[tuple[str, str], ...] = (
    ("URL", r"\b(?:https?|ftp|wss?|s3|gs)://[^\s<>\"'`|]{0,2047}[^\s<>\"'`|.,;:!?)\]}]"),
    (
        "URL",
        r"\bwww\.[a-zA-Z0-9-]{1,63}(?:\.[a-zA-Z0-9-]{1,63}){1,8}"
        r"(?:/[^\s<>\"'`|]{0,2047}[^\s<>\"'`|.,;:!?)\]}])?",
    ),
    (
        "EMAIL",
        r"\b[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b",
    ),
    (
        "TIMESTAMP",
        r"\b\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
        r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d{1,9})?)?"
        r"(?:\s?Z|\s?[+-](?:[01]\d):?[0-5]\d|\s?UTC)?)?(?![\d:])",
    ),
    (
        "TIMESTAMP",
        rf"\b(?:{_DAY},?\s+)?\d{{1,2}}\s+{_MONTH}\s+\d{{4}}\s+(?:at\s+)?\d{{1,2}}:\d{{2}}(?::\d{{2}})?"
        r"(?:\s+(?:[+-]\d{4}|GMT|UTC|[A-Z]{3,4}\b))?",
    ),
    (
        "TIMESTAMP",
        rf"\b(?:{_DAY}\s+)?{_MONTH}\s+\d{{1,2}}\s+\d{{2}}:\d{{2}}:\d{{2}}(?:[.,]\d+)?(?:\s+\d{{4}}\b)?",
    ),
    # Access logs: [03/Feb/2025:10:02:11 +0000]; Outlook: Monday, February 3, 2025 10:02 AM.
    ("TIMESTAMP", rf"\b\d{{2}}/{_MONTH}/\d{{4}}:\d{{2}}:\d{{2}}:\d{{2}}(?:\s[+-]\d{{4}})?"),
    (
        "TIMESTAMP",
        rf"\b(?:{_DAYS_LONG},\s+)?{_MONTHS_LONG}\s+\d{{1,2}},\s+\d{{4}}"
        r"(?:\s+(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]M\b)?)?",
    ),
    # A clock time with its zone ("at 14:02 UTC", "seit 09:15 Uhr"): when it happened.
    (
        "TIMESTAMP",
        r"\b(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?\s?(?:UTC|GMT|CET|CEST|BST|PST|PDT|EST|EDT|"
        r"Uhr|h\b|[AP]M\b)(?![\w:])",
    ),
    ("CVE", r"\b(?i:CVE)-\d{4}-\d{4,7}\b"),
    ("K8S_RESOURCE", rf"\b(?:{_K8S_KINDS})/[a-z0-9](?:[a-z0-9.-]{{0,251}}[a-z0-9])?(?![\w/])"),
    *DEFAULT_ACCOUNT_ID_RULES,
    ("ERROR_CODE", r"\b(?i:exit(?:ed)?\s+(?:with\s+)?(?:code|status))\s{0,3}[:=]?\s{0,3}\d{1,3}\b"),
    ("ERROR_CODE", r"\bSQLSTATE\s{0,3}[:=]?\s{0,3}\[?[0-9A-Z]{5}\b\]?"),
    ("ERROR_CODE", r"\b(?:ORA|PLS|TNS|IMP|EXP|RMAN)-\d{5}\b"),
    ("ERROR_CODE", r"\b(?:ERR|ERROR|E)_[A-Z0-9]{1,32}(?:_[A-Z0-9]{1,32}){0,8}\b"),
    (
        "ERROR_CODE",
        r"\b[A-Z][A-Z0-9]{0,31}(?:_[A-Z0-9]{1,32}){0,8}_(?:ERROR|FAILED|FAILURE|EXPIRED|DENIED)\b",
    ),
    ("ERROR_CODE", rf"\b(?:{_ERRNO}|{_K8S_REASONS}|{_GRPC}|{_CLOUD_CODES})\b"),
    ("ERROR_CODE", r"\bSIG(?:KILL|SEGV|TERM|ABRT|BUS|ILL|FPE|PIPE)\b"),
    # `"Code": "NoSuchKey"`, `<Code>AccessDenied</Code>`, and a CamelCase code before "(403)".
    (
        "ERROR_CODE",
        rf"\b(?:Code>|(?i:(?:error)?code)\"?\s{{0,2}}[:=]\s{{0,2}}\"?)(?P<v>{_CAMEL})\b",
    ),
    ("ERROR_CODE", rf"\b{_CAMEL}(?=\s{{0,2}}\(\s{{0,2}}[1-5]\d\d\s{{0,2}}\))"),
    ("HTTP_STATUS", r"\bHTTP/\d(?:\.\d)?\"?\s{1,3}(?P<v>[1-5]\d\d)\b"),
    (
        "HTTP_STATUS",
        rf"\b(?i:{_STATUS_WORDS})(?:\s{{1,3}}(?i:is|was))?\"?\s{{0,3}}[:=]?\s{{0,3}}\"?(?P<v>[1-5]\d\d)(?![\d:/]|\.\d)\b",
    ),
    # "error 500", "Fehler 503", "erreur 404": only 4xx/5xx, as "error 137" is an exit code.
    (
        "HTTP_STATUS",
        r"\b(?i:error|errors|fehler|fehlercode|erreur|errore|fout|c[oó]digo)"
        r"\s{0,3}[:=#]?\s{0,3}(?P<v>[45]\d\d)(?![\d:/]|[.,]\d)\b",
    ),
    ("HTTP_STATUS", rf"\b(?P<v>[1-5]\d\d)\s{{1,3}}(?i:{_REASONS})\b"),
    ("HTTP_STATUS", rf"\b(?i:{_REASONS})\s{{0,2}}\(\s{{0,2}}(?P<v>[1-5]\d\d)\s{{0,2}}\)"),
    (
        "EXCEPTION",
        r"\b(?:[A-Za-z_][A-Za-z0-9_]{0,63}\.){0,10}[A-Z][A-Za-z0-9_]{1,80}?(?:Exception|Error)\b",
    ),
    ("EXCEPTION", r"\b(?:KeyboardInterrupt|SystemExit|StopIteration|GeneratorExit)\b"),
    (
        "VERSION",
        r"(?<![\w.])(?i:version|ver\.?|release|v)\s{0,3}:?\s{0,3}\d{1,6}(?:\.\d{1,6}){1,3}"
        rf"{_VERSION_TAIL}(?!\.?\d)",
    ),
    (
        "VERSION",
        r"\b[A-Za-z][A-Za-z0-9_-]{1,30}/v?\d{1,6}(?:\.\d{1,6}){1,3}(?:-[0-9A-Za-z]{1,20})?(?!\.?\d)",
    ),
    # "PostgreSQL 14.7", "Redis 7.2", "Java 17": the number after a named component.
    (
        "VERSION",
        rf"(?<![\w./-])(?i:{'|'.join(COMPONENTS)})\s{{1,3}}"
        rf"(?P<v>\d{{1,4}}(?:\.\d{{1,6}}){{1,3}}{_VERSION_TAIL})(?![\w]|\.\d)",
    ),
    (
        "VERSION",
        rf"(?<![\w./-])(?i:{'|'.join(MAJOR_ONLY)})\s{{1,3}}(?P<v>\d{{1,3}})(?![\w%]|[.,:]\d)",
    ),
    ("CLOUD_REGION", rf"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-|iso-)?(?:{_DIRS})-\d\b"),
    (
        "CLOUD_REGION",
        rf"\b(?:us|europe|asia|australia|northamerica|southamerica|me|africa)-(?:{_DIRS})\d{{1,2}}"
        r"(?:-[a-f])?\b",
    ),
    ("CLOUD_REGION", rf"\b(?:{_AZURE})\b"),
    ("IP", rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)"),
    (
        "IP",
        r"(?<![\w:.])(?=[0-9A-Fa-f:]{0,45}[0-9A-Fa-f])"
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:)?(?![\w:])",
    ),
    (
        "VERSION",
        r"(?<![\w.-])\d{1,4}\.\d{1,4}\.\d{1,6}(?:-[0-9A-Za-z]{1,20}(?:\.[0-9A-Za-z]{1,20}){0,4})?"
        r"(?![\w]|\.\d)",
    ),
    (
        "HOSTNAME",
        r"(?<![\w.@/-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,16}"
        r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?![\w-]|\.\w)",
    ),
    # db-reports-1, cache-1, k8s-mx-1, ingest-db-2: hyphenated, with a machine-like part
    # and a digit after a hyphen (not k8s-native), never a version suffix (api-v2).
    (
        BARE_HOST,
        r"(?<![\w.-])(?P<v>(?=[a-z0-9-]{0,60}\b(?:db|pg|mysql|redis|cache|web|api|app|lb|k8s|"
        r"node|worker|srv|vm|edge|proxy|gw|mq|kafka|cdn)\b)(?=[a-z0-9-]{0,60}-[a-z]{0,20}\d)"
        r"(?![a-z0-9-]{0,60}-v\d+(?![\w-]))"
        r"[a-z][a-z0-9]{0,30}(?:-[a-z0-9]{1,30}){1,6})(?![\w/-]|\.\w)",
    ),
    (
        BARE_HOST,
        rf"{_HOST_WORDS}(?=[A-Za-z0-9]{{0,62}}[\d-])(?P<v>[A-Za-z][A-Za-z0-9]{{0,62}}(?:-[A-Za-z0-9]{{1,62}}){{0,8}})"
        r"(?![\w/-]|\.\w)",
    ),
)

# A plain lowercase word can only start an entity if it is one of these context words
# (or carries a digit or a separator); checking that first skips most prose cheaply.
GUARD_WORDS = (
    "v|ver|version|release|https?|status|response|returned|returns|returning|responded|got|"
    "received|throws|error|exit|exited|account|aws|tenant|east|west|north|south|central|uk|"
    "france|germany|sweden|switzerland|norway|poland|italy|spain|japan|korea|australia|india|"
    "brazil|canada|uae|qatar|israel|mexico|acct|konto|compte|cuenta|conta|customer|kunden|"
    "prj|proj|org|ws|"
    "num|connect|ssh|ping|resolv|reach|host|server|node|machine|instance|vm|replica|primary|"
    "standby|serveur|servidor|knoten|noeud|nœud|nodo|rechner|fehler|erreur|errore|fout|"
    "database|balancer|endpoint|proxy|broker|datenbank|base|cluster|cl[úu]ster|banco|"
    "distribution|postgres|mysql|mariadb|redis|mongodb|"
    "c[oó]digo|code|antwortet|statuscode|" + "|".join(COMPONENTS)
)
