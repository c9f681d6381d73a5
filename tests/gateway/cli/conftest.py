"""The `review` command is tested on the review app's seeded database and app factory."""

from tests.review_tui.conftest import db, db_url, make_app, prefs_path, seeded

__all__ = ["db", "db_url", "make_app", "prefs_path", "seeded"]
