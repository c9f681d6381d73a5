"""Deterministic, realistic queue contents for tests, the benchmark and the demo.

The review UI is only as trustworthy as the data it was tried on, so seeded tickets
look like real support mail: hosted-database and Kubernetes customers, log excerpts
with failure signatures, extracted entities with offsets into the body, KB suggestions
with scores, some stale drafts and some with unfilled placeholders. Everything derives
from a seed and a fixed `now`, so two runs produce the same rows (snapshots rely on it).
Large queues are written with bulk inserts in batches so 100,000 drafts take seconds.

The sample mail lives in `scenarios`, the bulk writer in `batch`, and `seed` /
`add_ticket` in `write`; callers import them from here.
"""

from __future__ import annotations

from storage.seed.scenarios import FIXED_NOW, MODEL_VERSION
from storage.seed.write import SeedResult, add_ticket, seed

__all__ = ["FIXED_NOW", "MODEL_VERSION", "SeedResult", "add_ticket", "seed"]
