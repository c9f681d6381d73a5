"""The trained model's directory: its version hash, its meta.json, its atomic write.

A model directory describes itself (labels, weights, settings, metrics) and is written
beside its final place and swapped in, so the gateway never loads half a model and a
re-run with the same rows, seed and settings gets the same version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlp.intent.fit import TrainSettings
from nlp.intent.labelled import LabelledDataError
from nlp.intent.model import (
    CHAR_NGRAMS,
    FORMAT_VERSION,
    MAX_CHARS,
    PREPROCESS_VERSION,
    WORD_NGRAMS,
    LinearTextModel,
)

__all__ = ["build_meta", "check_target", "data_hash", "write_model"]


def data_hash(rows: Sequence[tuple[str, str]], seed: int, settings: TrainSettings) -> str:
    digest = hashlib.sha256()
    digest.update(
        json.dumps([seed, asdict(settings), FORMAT_VERSION, MAX_CHARS, PREPROCESS_VERSION]).encode()
    )
    for text, label in rows:
        digest.update(label.encode("utf-8") + b"\x00" + text.encode("utf-8") + b"\x01")
    return digest.hexdigest()


def build_meta(
    version: str,
    labels: Sequence[str],
    weight: float,
    temperature: float,
    n_train: int,
    n_heldout: int,
    settings: TrainSettings,
    svm_weight: float = 0.0,
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "version": version,
        "max_chars": MAX_CHARS,
        "preprocess": PREPROCESS_VERSION,
        "labels": list(labels),
        "spacy_weight": weight,
        "svm_weight": svm_weight,
        "temperature": temperature,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "n_train": n_train,
        "n_heldout": n_heldout,
        "refit_on_all_rows": settings.refit and n_heldout > 0,
        "settings": asdict(settings),
        "components": {
            "textcat": "spaCy textcat, TextCatBOW.v3 (exclusive, 1-2 grams) on blank 'en'"
            if weight > 0
            else "not used: held-out calibration gave it weight 0",
            "linear": f"LogisticRegression over TF-IDF word {WORD_NGRAMS} + char_wb {CHAR_NGRAMS}"
            + (", mixed with a LinearSVC (softmax over scaled margins)" if svm_weight > 0 else ""),
        },
    }


def check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise LabelledDataError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "meta.json").exists():
        raise LabelledDataError(
            f"--out {out} is a non-empty directory that is not a model; refusing to replace it"
        )


def write_model(
    out: Path, linear: LinearTextModel, textcat: Any | None, meta: dict[str, Any]
) -> None:
    """Write into a sibling temp dir, then swap it in, so readers never see half a model."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp"
    old = out.parent / f".{out.name}.old"
    for leftover in (tmp, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    tmp.mkdir()
    linear.save(tmp)
    if textcat is not None:
        textcat.to_disk(tmp / "textcat")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", "utf-8")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
