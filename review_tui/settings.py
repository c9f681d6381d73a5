"""What the review app needs to know, as plain values handed in by its caller.

The app never reads the gateway's config: the CLI (or the demo) passes plain values, so
the UI and the gateway share nothing but the database. The clock is injectable so ages
on screen are deterministic in snapshots without freezing time for the event loop; it
drives displayed ages and the "new" marks only, while leases always run on real time
(other reps do). `prefs_path` is where the queue remembers each rep's view, sort,
filter and last visit (see `review_tui.prefs`); None remembers nothing. `desk` is the
desk's teams and rules as the gateway read them from config: the rep's teams decide
what "mine" lists, and its reps and teams are offered when assigning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from storage.desk.hours import Desk
from storage.models import utcnow

# Rebuilds a draft body from a KB article: (article_id, entities, customer name, ticket id)
# -> (body, unfilled placeholder names). The CLI wires it to the drafting code.
Redrafter = Callable[[str, Sequence[dict[str, object]], str, int], tuple[str, list[str]]]

INTENTS: tuple[str, ...] = (
    "access_permissions",
    "account_login",
    "outage_report",
    "performance",
    "bug_report",
    "config_help",
    "billing",
    "quota_limits",
    "data_request",
    "security_report",
    "feature_request",
    "needs_triage",
)


MetricsBeside = Callable[[list[tuple[str, datetime, datetime]]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ReviewSettings:
    database_url: str
    actor: str
    ops: tuple[str, ...] = ()
    bulk_ops_threshold: int = 20
    bulk_window_minutes: int = 60
    lease_minutes: int = 15
    refresh_seconds: float = 2.0
    page_size: int = 200
    from_address: str = "support@example.com"
    intents: tuple[str, ...] = INTENTS
    clock: Callable[[], datetime] = field(default=utcnow)
    redraft: Redrafter | None = None
    prefs_path: Path | None = None
    # (what, start, end) spans of incidents → (metric spike, its sparkline) beside them;
    # given by the gateway, which reads Prometheus (the UI never imports it).
    metrics_beside: MetricsBeside | None = None
    desk: Desk | None = None

    @property
    def is_ops(self) -> bool:
        return self.actor in self.ops

    @property
    def rules(self) -> Desk:
        """The desk's rules; a desk of no teams when the caller gave none."""
        return self.desk or Desk()

    @property
    def teams(self) -> tuple[str, ...]:
        """The rep's own teams: "mine" lists their unowned tickets too."""
        return self.rules.teams_of(self.actor)
