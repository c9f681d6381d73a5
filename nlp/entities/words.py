"""Word lists the entity rules and checks consult, kept apart from the regexes.

They change for different reasons than the patterns do: a new top-level domain, a
file extension that keeps being mistaken for one, an English compound that looked
like a host name in a customer's sentence, a piece of software customers name with
its version. Keeping them as plain whitespace-separated words makes such an edit a
one-word change that anyone can review.
"""

from __future__ import annotations


def wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


TLDS = wordset(
    """com net org io dev app cloud ai co info biz me tech xyz site online edu gov mil int
    eu uk de fr nl be ch at es it se no dk fi pl cz pt ie us ca au nz jp cn kr in br mx
    ru ua tr za sg hk tw il ae ar cl cy gr hu ro sk si lt lv ee lu is bg hr rs by kz vn
    th my id ph pk ng ke eg ma tn su tv fm gg je im li mc pro name mobi asia travel
    local internal lan corp intra intranet home localdomain svc cluster test example
    invalid localhost arpa shop store network systems services digital solutions"""
)

# Common file extensions that also look like the last label of a host name.
FILE_EXTS = wordset(
    """log txt out err gz zip tar tgz bz2 xz json yaml yml toml ini cfg conf csv tsv xml
    html htm py js ts go rs rb java class jar war sh bash md rst pdf png jpg jpeg gif svg
    exe dll so dylib bin dat db sqlite sql pem crt key csr pid sock lock bak tmp swp
    properties env"""
)

# Hyphenated English words that can follow "server", "host" or "connecting to" in prose
# ("the server-side fix", "connecting to e-mail"). A dotless host needs a digit or must
# avoid these and the prefixes below.
HYPHEN_WORDS = wordset(
    """e-mail follow-up re-run third-party built-in server-side client-side add-on
    log-in sign-in sign-up opt-in opt-out set-up check-in long-running up-to-date
    out-of-date real-time end-to-end end-user read-only write-only on-premise on-premises
    on-prem high-availability failover-ready well-known so-called as-is self-hosted
    self-signed multi-factor two-factor time-out pop-up drop-down back-end front-end
    one-time all-in-one plug-in de-facto ad-hoc x-ray t-shirt"""
)
HYPHEN_PREFIXES = wordset(
    """re co pre non self multi e x anti sub de un well long short high low cross
    built follow third sign log opt set check real end read write one two all so"""
)

# Software customers name right before its version ("PostgreSQL 14.7", "Redis 7.2").
# Lower case; matched case-insensitively as whole words.
COMPONENTS = (
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "mongodb",
    "elasticsearch",
    "opensearch",
    "kafka",
    "rabbitmq",
    "nginx",
    "ingress-nginx",
    "apache",
    "httpd",
    "haproxy",
    "envoy",
    "traefik",
    "istio",
    "openssl",
    "openssh",
    "libcurl",
    "curl",
    "glibc",
    "kubernetes",
    "k8s",
    "kubectl",
    "helm",
    "docker",
    "containerd",
    "terraform",
    "ansible",
    "python",
    "java",
    "openjdk",
    "jdk",
    "node\\.js",
    "nodejs",
    "ruby",
    "rails",
    "django",
    "php",
    "golang",
    "dotnet",
    "\\.net",
    "tomcat",
    "jenkins",
    "gitlab",
    "grafana",
    "prometheus",
    "log4j",
    "spring boot",
    "ubuntu",
    "debian",
    "centos",
    "rhel",
    "alpine",
    "windows",
    "macos",
    "ios",
    "android",
    "chrome",
    "firefox",
    "safari",
    "cert-manager",
    "vault",
    "consul",
)
# Of those, the ones whose bare major number is still a version ("PostgreSQL 14").
MAJOR_ONLY = (
    "postgresql",
    "postgres",
    "mysql",
    "java",
    "openjdk",
    "jdk",
    "php",
    "debian",
    "rhel",
    "windows",
    "ios",
    "android",
    "chrome",
    "firefox",
)

# Words that sit before a version but name no component ("upgraded to 2.31.0").
NOT_COMPONENTS = wordset(
    """to from and or the a an on at in is are was were be been we our your their its it
    with using use used run running runs upgraded upgrade updated update installed install
    deployed deploy rolled since after before of for by via than then now still also
    version ver release v latest current new old same image tag build fixed affected
    library client server package app agent sdk cli driver plugin module tool api
    between vs versus into onto patch patched"""
)
# Nouns that only say what kind of component the word before them is ("Python SDK").
COMPONENT_SUFFIXES = wordset(
    """sdk cli client server agent driver plugin library connector operator chart
    module extension daemon runtime"""
)
