"""Model versions: which labeler produced which prediction, and which one a project trusts now."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.core.errors import Conflict, NotFound
from server.core.time import utcnow
from server.orm import ModelVersion, Project
from server.orm.enums import ModelStatus
from server.projects.schemas import PipelineSettings, ProjectSettings
from workers.contracts import ModelSpec


def pipeline_of(project: Project) -> PipelineSettings:
    return ProjectSettings.model_validate(project.settings).pipeline


def spec_of(version: ModelVersion) -> ModelSpec:
    return ModelSpec.model_validate(version.spec)


def register(session: Session, project_id: int, spec: ModelSpec, *, status: ModelStatus) -> ModelVersion:
    """The model version for `spec` in the project, created on first use (one per spec.ref)."""
    existing = session.scalar(
        select(ModelVersion).where(
            ModelVersion.project_id == project_id,
            ModelVersion.family == spec.family,
            ModelVersion.version == spec.ref,
        )
    )
    if existing is not None:
        return existing
    version = ModelVersion(
        project_id=project_id,
        family=spec.family,
        version=spec.ref,
        spec=spec.model_dump(mode="json"),
        status=status.value,
        promoted_at=utcnow() if status is ModelStatus.active else None,
    )
    session.add(version)
    session.flush()
    return version


def active_labeler(session: Session, project: Project) -> ModelVersion:
    """The project's active labeler; the configured initial labeler until a round promotes one."""
    active = session.scalar(
        select(ModelVersion)
        .where(ModelVersion.project_id == project.id, ModelVersion.status == ModelStatus.active.value)
        .order_by(ModelVersion.id.desc())
    )
    if active is not None:
        return active
    return register(session, project.id, pipeline_of(project).labeler, status=ModelStatus.active)


def versions_of(session: Session, project_id: int) -> list[ModelVersion]:
    query = select(ModelVersion).where(ModelVersion.project_id == project_id)
    return list(session.scalars(query.order_by(ModelVersion.id)))


def version_of(session: Session, project_id: int, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None or version.project_id != project_id:
        raise NotFound("no such model version")
    return version


def promote(session: Session, project: Project, version: ModelVersion) -> ModelVersion | None:
    """Make `version` the project's active labeler; the active one it replaces is retired.

    Returns the version it replaced. Re-labelling and re-routing are the caller's (a round's or a
    rollback's) next step.
    """
    if version.project_id != project.id:
        raise NotFound("no such model version")
    previous = None
    for other in session.scalars(
        select(ModelVersion).where(
            ModelVersion.project_id == project.id, ModelVersion.status == ModelStatus.active.value
        )
    ):
        if other.id != version.id:
            other.status = ModelStatus.retired.value
            previous = other
    version.status = ModelStatus.active.value
    version.promoted_at = utcnow()
    session.flush()
    return previous


def rollback(session: Session, project: Project, version_id: int) -> ModelVersion:
    """Bring back a version that was active before (a lead's undo of a promotion)."""
    version = version_of(session, project.id, version_id)
    if version.status not in (ModelStatus.retired.value, ModelStatus.active.value):
        raise Conflict(
            f"model version {version_id} was never promoted ({version.status})", code="not_promotable"
        )
    promote(session, project, version)
    return version
