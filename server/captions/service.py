"""Captions of subjects from their labels in chosen states (the API's, and the exports' source).

States: `verified` means what people decided, so it includes `gold` (a verified label a reviewer
confirmed); `auto_accepted` adds what the trusted labeler decided. Predicted labels are never
captioned. The project's `include_sensitive` decides whether sensitive categories are said.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from server.captions import repository
from server.captions.compose import Caption, caption_of
from server.captions.schemas import CaptionOut
from server.core.errors import BadRequest, NotFound
from server.orm import Project, Subject, TaxonomyVersion
from server.orm.enums import LabelState
from server.projects.schemas import ProjectSettings
from server.taxonomy import service as taxonomy
from server.taxonomy.format import TaxonomySpec

CAPTION_STATES = frozenset({LabelState.verified, LabelState.auto_accepted})


def parse_states(text: str | None) -> frozenset[LabelState]:
    """`"verified,auto_accepted"` -> the states; refuses anything but those two."""
    names = [n.strip() for n in (text or LabelState.verified.value).split(",") if n.strip()]
    if not names:
        raise BadRequest("name at least one label state: verified, auto_accepted", code="bad_states")
    unknown = sorted(set(names) - {s.value for s in CAPTION_STATES})
    if unknown:
        raise BadRequest(
            f"captions are composed from verified or auto_accepted labels, not {', '.join(unknown)}",
            code="bad_states",
        )
    return frozenset(LabelState(n) for n in names)


def stored_states(states: Iterable[LabelState]) -> set[str]:
    """The label states to read for `states`: verified brings gold along."""
    chosen = {s.value for s in states}
    if LabelState.verified.value in chosen:
        chosen.add(LabelState.gold.value)
    return chosen


def values_of(
    session: Session, subject_ids: Collection[int], states: Iterable[LabelState]
) -> dict[int, dict[str, Any]]:
    """subject id -> {category key: value} of its labels in the chosen states (for exports too)."""
    return repository.values_by_state(session, subject_ids, stored_states(states))


_specs: dict[tuple[int, str], TaxonomySpec] = {}


def project_spec(session: Session, project: Project) -> TaxonomySpec:
    """The taxonomy new work answers; parsed once per process (stored versions never change)."""
    version = (
        session.get(TaxonomyVersion, project.taxonomy_version_id) if project.taxonomy_version_id else None
    )
    if version is None or version.project_id != project.id:
        raise NotFound("the project has no taxonomy yet")
    key = (version.id, version.content_hash)
    if key not in _specs:
        _specs[key] = taxonomy.spec_of(version)
    return _specs[key]


def caption_for_values(project: Project, spec: TaxonomySpec, values: Mapping[str, Any]) -> Caption:
    include_sensitive = ProjectSettings.model_validate(project.settings).include_sensitive
    return caption_of(spec, values, include_sensitive=include_sensitive)


def _subject_of(session: Session, project: Project, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None or subject.project_id != project.id:
        raise NotFound("no such subject")
    return subject


def subject_caption(
    session: Session, project: Project, subject_id: int, states: Iterable[LabelState]
) -> CaptionOut:
    subject = _subject_of(session, project, subject_id)
    values = values_of(session, [subject.id], states)[subject.id]
    caption = caption_for_values(project, project_spec(session, project), values)
    return CaptionOut(caption=caption.text, tokens=caption.tokens, trimmed=caption.trimmed, values=values)


def preview_caption(
    session: Session, project: Project, subject_id: int, values: Mapping[str, Any]
) -> CaptionOut:
    """The caption draft answers would give: the review UI's live preview."""
    _subject_of(session, project, subject_id)
    spec = project_spec(session, project)
    known = {c.full_key for c in spec.categories()}
    draft = {k: v for k, v in values.items() if k in known and _well_formed(v)}
    caption = caption_for_values(project, spec, draft)
    return CaptionOut(caption=caption.text, tokens=caption.tokens, trimmed=caption.trimmed, values=draft)


def _well_formed(value: Any) -> bool:
    """A draft value the composer can read: a key, a bool, text, a list of keys, or nothing."""
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
