"""Grouping accuracy of our log template mining on loghub 2k, beside Drain's published figures.

Each system's corrected ground truth (`*_2k.log_structured_corrected.csv`) gives every
line's message content and its true event id. We feed the `Content` column, in order,
through `nlp.logs.mining.make_template_miner()` (the same generic masks and drain settings the
gateway uses, never tuned per system) and score the standard grouping accuracy: a line
is correct when the set of lines in its predicted cluster equals the set of lines in
its ground-truth cluster. In the same run, a plain drain3 miner without masks is
scored as a baseline. Drain's published accuracies (per-system tuned settings) are from
the data README.

Run: .venv/bin/python bench/log_templates.py [--data /work/shared/data]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from nlp.logs.mining import make_template_miner

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"

PUBLISHED_DRAIN = {
    "HDFS": 0.9975,
    "Hadoop": 0.9475,
    "Spark": 0.92,
    "Zookeeper": 0.9665,
    "BGL": 0.9625,
    "HPC": 0.887,
    "Thunderbird": 0.955,
    "Windows": 0.997,
    "Linux": 0.69,
    "Android": 0.911,
    "HealthApp": 0.78,
    "Apache": 1.0,
    "Proxifier": 0.5265,
    "OpenSSH": 0.7875,
    "OpenStack": 0.7325,
    "Mac": 0.7865,
}


def grouping_accuracy(truth: list[str], predicted: list[int]) -> float:
    """Share of lines whose predicted cluster is exactly their ground-truth cluster."""
    truth_sizes = Counter(truth)
    members: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(predicted):
        members[cluster].append(index)
    correct = 0
    for indices in members.values():
        labels = {truth[i] for i in indices}
        if len(labels) == 1 and truth_sizes[labels.pop()] == len(indices):
            correct += len(indices)
    return correct / len(truth) if truth else 0.0


def plain_drain() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    return TemplateMiner(persistence_handler=None, config=config)


def run(lines: list[str], factory: Callable[[], TemplateMiner]) -> list[int]:
    miner = factory()
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def load(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    root = args.data / "logs" / "_loghub_2k_corrected_logparser"
    print(f"{'system':<12} {'ours':>7} {'drain3 plain':>13} {'Drain published':>16}  lines/s")
    ours_all, base_all, pub_all = [], [], []
    for system, published in PUBLISHED_DRAIN.items():
        path = root / system / f"{system}_2k.log_structured_corrected.csv"
        if not path.exists():
            print(f"{system:<12} missing {path}")
            continue
        lines, truth = load(path)
        started = time.perf_counter()
        ours = grouping_accuracy(truth, run(lines, make_template_miner))
        rate = len(lines) / (time.perf_counter() - started)
        base = grouping_accuracy(truth, run(lines, plain_drain))
        ours_all.append(ours)
        base_all.append(base)
        pub_all.append(published)
        print(f"{system:<12} {ours:>7.4f} {base:>13.4f} {published:>16.4f}  {rate:8,.0f}")
    if ours_all:
        n = len(ours_all)
        print(
            f"{'mean':<12} {sum(ours_all) / n:>7.4f} {sum(base_all) / n:>13.4f} "
            f"{sum(pub_all) / n:>16.4f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
