"""Training flags, kept apart from `nlp.intent.train` so a CLI can declare them without
importing numpy, scikit-learn and spaCy at start-up."""

from __future__ import annotations

import argparse


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training flags, shared by `python -m nlp.intent.train` and `supportgate train`."""
    parser.add_argument("--data", required=True, help="CSV or JSONL file with text and label")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--test-split", default="test", help="rows whose 'split' is this are kept for testing"
    )
    parser.add_argument(
        "--min-textcat-weight",
        type=float,
        default=0.0,
        help="keep the spaCy textcat in the ensemble with at least this weight",
    )
