"""Candidate incidents from what analysis found in many customers' mail (pure).

`keys` says what a mail names; `candidates` finds bursts of shared keys and merges them.
Imports nothing of ours outside nlp.
"""

from nlp.incidents.candidates import (
    Candidate,
    Evidence,
    find_candidates,
    poisson_surprise,
    split_known,
)
from nlp.incidents.keys import (
    STRONG,
    WEAK,
    Key,
    Sighting,
    key_of,
    mail_keys,
    matches,
    sighting,
)

__all__ = [
    "STRONG",
    "WEAK",
    "Candidate",
    "Evidence",
    "Key",
    "Sighting",
    "find_candidates",
    "key_of",
    "mail_keys",
    "matches",
    "poisson_surprise",
    "sighting",
    "split_known",
]
