"""Pure analysis of support mail: ParsedMessage in, frozen dataclasses out.

Nothing here does I/O on the network or imports the rest of supportgate. `analyse`,
`Analyzer` and `AnalyzerSettings` are loaded on first access, so importing
`nlp.types` stays cheap and never pulls in spaCy, drain3 or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"analyse", "Analyzer", "AnalyzerSettings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # import_module, not "from nlp import analyse": that would ask this hook again.
        module = importlib.import_module("nlp.analyse")
        return getattr(module, name)
    raise AttributeError(f"module 'nlp' has no attribute {name!r}")
