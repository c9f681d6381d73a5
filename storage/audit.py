"""One helper for audit rows so every state change records who, what and why."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from storage.models import AuditLog, utcnow


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    details: dict[str, Any] | None = None,
    model_version: str | None = None,
) -> AuditLog:
    """Add an audit row to `session`; it commits with the change it describes."""
    row = AuditLog(
        at=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=details or {},
        model_version=model_version,
    )
    session.add(row)
    return row
