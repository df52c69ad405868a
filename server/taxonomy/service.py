"""Storing taxonomy versions. A changed taxonomy is a new version; stored versions never change."""

from __future__ import annotations

from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from server.core.errors import NotFound, ValidationFailed
from server.orm import Category, CategoryValue, Project, Region, TaxonomyVersion
from server.taxonomy.format import (
    TaxonomySpec,
    TaxonomyValidationError,
    UnknownTaxonomyError,
    default_names,
    load_taxonomy,
)


def parse(text: str | bytes) -> TaxonomySpec:
    try:
        return load_taxonomy(text)
    except TaxonomyValidationError as exc:
        errors = [{"path": e.path, "message": e.message} for e in exc.errors]
        raise ValidationFailed("the taxonomy is not valid", errors) from None


def add_version(
    session: Session, project: Project, text: str, *, user_id: int | None = None
) -> tuple[TaxonomyVersion, bool]:
    """Store `text` as the project's next version and make it current.

    Returns (version, created). The same content offered again returns the stored version.
    """
    spec = parse(text)
    digest = spec.content_hash()
    existing = session.scalar(
        select(TaxonomyVersion).where(
            TaxonomyVersion.project_id == project.id, TaxonomyVersion.content_hash == digest
        )
    )
    if existing is not None:
        project.taxonomy_version_id = existing.id
        return existing, False
    number = (
        session.scalar(
            select(func.max(TaxonomyVersion.version)).where(TaxonomyVersion.project_id == project.id)
        )
        or 0
    ) + 1
    version = TaxonomyVersion(
        project_id=project.id,
        name=spec.name,
        version=number,
        content_hash=digest,
        source_yaml=text,
        spec=spec.model_dump(mode="json"),
        created_by_id=user_id,
    )
    session.add(version)
    session.flush()
    position = 0
    for r_index, region_spec in enumerate(spec.regions):
        region = Region(
            taxonomy_version_id=version.id,
            key=region_spec.key,
            name=region_spec.name,
            parsing_ids=list(region_spec.parsing_ids),
            position=r_index,
        )
        version.regions.append(region)
        for category_spec in region_spec.categories:
            category = Category(
                taxonomy_version_id=version.id,
                key=category_spec.full_key,
                question=category_spec.question,
                kind=str(category_spec.kind),
                when=category_spec.when.model_dump(mode="json", exclude_none=True)
                if category_spec.when
                else None,
                caption=category_spec.caption.model_dump(mode="json"),
                trust_threshold=category_spec.trust_threshold,
                sensitive=category_spec.sensitive,
                position=position,
            )
            position += 1
            category.values = [
                CategoryValue(
                    key=value.key,
                    label=value.label,
                    prompts=list(value.prompts),
                    caption=value.caption,
                    position=v_index,
                )
                for v_index, value in enumerate(category_spec.values)
            ]
            region.categories.append(category)
    session.flush()
    project.taxonomy_version_id = version.id
    return version, True


def default_yaml(name: str) -> str:
    """The text of a taxonomy shipped with the server (stored as the version's source)."""
    if name not in default_names():
        raise UnknownTaxonomyError(f"no default taxonomy named {name!r}; shipped: {default_names()}")
    return resources.files("server.taxonomy").joinpath("defaults", f"{name}.yaml").read_text()


def add_default_version(
    session: Session, project: Project, name: str, user_id: int | None
) -> TaxonomyVersion:
    version, _ = add_version(session, project, default_yaml(name), user_id=user_id)
    return version


def current_version(session: Session, project: Project) -> TaxonomyVersion:
    if project.taxonomy_version_id is None:
        raise NotFound("the project has no taxonomy yet")
    return version_tree(session, project.id, project.taxonomy_version_id)


def version_tree(session: Session, project_id: int, version_id: int) -> TaxonomyVersion:
    version = session.scalar(
        select(TaxonomyVersion)
        .where(TaxonomyVersion.id == version_id, TaxonomyVersion.project_id == project_id)
        .options(
            selectinload(TaxonomyVersion.regions)
            .selectinload(Region.categories)
            .selectinload(Category.values)
        )
    )
    if version is None:
        raise NotFound("no such taxonomy version")
    return version


def versions(session: Session, project_id: int) -> list[TaxonomyVersion]:
    query = select(TaxonomyVersion).where(TaxonomyVersion.project_id == project_id)
    return list(session.scalars(query.order_by(TaxonomyVersion.version)))


def spec_of(version: TaxonomyVersion) -> TaxonomySpec:
    return TaxonomySpec.model_validate(version.spec)
