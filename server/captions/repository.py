"""The label values a caption is composed from."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.orm import Category, Label


def values_by_state(
    session: Session, subject_ids: Collection[int], states: Collection[str]
) -> dict[int, dict[str, Any]]:
    """subject id -> {category full key: value} of its labels in `states`."""
    out: dict[int, dict[str, Any]] = {int(s): {} for s in subject_ids}
    if not out or not states:
        return out
    rows = session.execute(
        select(Label.subject_id, Category.key, Label.value)
        .join(Category, Category.id == Label.category_id)
        .where(Label.subject_id.in_(list(out)), Label.state.in_(list(states)))
    )
    for subject_id, key, value in rows:
        out[int(subject_id)][key] = value
    return out
