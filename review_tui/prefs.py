"""What the queue remembers for each rep between runs: view, sort, filter, and when they
last looked.

A rep who works from "all" sorted newest first, or keeps a filter on billing mail,
expects to find it so the next morning, and wants to see which tickets arrived since
they last loaded the queue. A rep with nothing saved starts on their own queue ("mine")
sorted by when the reply is due.
These are a rep's own view of the queue, not shared state, so they live in a small JSON
file on the rep's machine (one entry per rep name) rather than in the database the
gateway writes. A missing or unreadable file means defaults; a failed write is ignored,
because losing a sort order must never stop a rep from working.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from storage.review import SORT_KEYS, VIEWS, QueueFilter

__all__ = ["DEFAULT_FILTER", "QueuePrefs", "default_prefs_path", "load_prefs", "save_prefs"]

DEFAULT_FILTER = QueueFilter(view="mine", sort="due")


@dataclass(frozen=True, slots=True)
class QueuePrefs:
    flt: QueueFilter = DEFAULT_FILTER
    last_seen: datetime | None = None  # when this rep last loaded the queue


def default_prefs_path() -> Path:
    """`$XDG_STATE_HOME/supportgate/review.json` (or `~/.local/state/...`)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "supportgate" / "review.json"


def _read_all(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_prefs(path: Path | None, actor: str) -> QueuePrefs:
    """`actor`'s remembered queue view; defaults for anything missing or malformed."""
    if path is None:
        return QueuePrefs()
    raw = _read_all(path).get(actor)
    if not isinstance(raw, dict):
        return QueuePrefs()
    flt = DEFAULT_FILTER
    try:
        sort = str(raw.get("sort", flt.sort))
        descending = bool(raw.get("descending", False))
        if "view" not in raw and sort == "age" and not descending:
            sort = flt.sort  # saved before the desk, when oldest first was the default
        view = str(raw.get("view", flt.view))
        flt = replace(
            flt,
            view=view if view in VIEWS else flt.view,
            sort=sort if sort in SORT_KEYS else flt.sort,
            descending=descending,
            states=tuple(str(s) for s in raw.get("states", flt.states)),
            intents=tuple(str(i) for i in raw.get("intents", ())),
            min_confidence=_float(raw.get("min_confidence")),
            max_confidence=_float(raw.get("max_confidence")),
            mailbox=str(raw["mailbox"]) if raw.get("mailbox") else None,
            search=str(raw.get("search", "")),
        )
        seen = raw.get("last_seen")
        last_seen = datetime.fromisoformat(seen) if isinstance(seen, str) else None
    except (TypeError, ValueError):
        return QueuePrefs()
    return QueuePrefs(flt=flt, last_seen=last_seen)


def _float(value: object) -> float | None:
    return None if value is None else float(str(value))


def save_prefs(path: Path | None, actor: str, prefs: QueuePrefs) -> None:
    """Remember `prefs` for `actor`, keeping other reps' entries; never raises."""
    if path is None:
        return
    flt = prefs.flt
    entry = {
        "view": flt.view,
        "sort": flt.sort,
        "descending": flt.descending,
        "states": list(flt.states),
        "intents": list(flt.intents),
        "min_confidence": flt.min_confidence,
        "max_confidence": flt.max_confidence,
        "mailbox": flt.mailbox,
        "search": flt.search,
        "last_seen": prefs.last_seen.isoformat() if prefs.last_seen else None,
    }
    data = _read_all(path)
    data[actor] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
