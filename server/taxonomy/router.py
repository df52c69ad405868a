from __future__ import annotations

from fastapi import APIRouter, Response, status

from server.core.http import DbSession
from server.orm import TaxonomyVersion
from server.projects.deps import ProjectLead, ProjectMember
from server.taxonomy import service
from server.taxonomy.schemas import (
    CategoryOut,
    RegionOut,
    TaxonomyTree,
    TaxonomyUpload,
    TaxonomyVersionSummary,
    ValueOut,
)

router = APIRouter(tags=["taxonomy"])


def _summary(version: TaxonomyVersion, current_id: int | None) -> TaxonomyVersionSummary:
    return TaxonomyVersionSummary(
        id=version.id,
        name=version.name,
        version=version.version,
        content_hash=version.content_hash,
        created_at=version.created_at,
        current=version.id == current_id,
    )


def _tree(version: TaxonomyVersion, current_id: int | None) -> TaxonomyTree:
    regions = [
        RegionOut(
            key=r.key,
            name=r.name,
            parsing_ids=[int(i) for i in r.parsing_ids],
            categories=[
                CategoryOut(
                    id=c.id,
                    key=c.key,
                    question=c.question,
                    kind=c.kind,
                    when=c.when,
                    caption=c.caption,
                    trust_threshold=c.trust_threshold,
                    sensitive=c.sensitive,
                    values=[
                        ValueOut(
                            key=v.key, label=v.label, prompts=[str(p) for p in v.prompts], caption=v.caption
                        )
                        for v in c.values
                    ],
                )
                for c in r.categories
            ],
        )
        for r in version.regions
    ]
    return TaxonomyTree(
        **_summary(version, current_id).model_dump(),
        caption_groups=list(version.spec.get("caption_groups", [])),
        regions=regions,
    )


@router.get("/projects/{project_id}/taxonomy", response_model=TaxonomyTree)
def current_taxonomy(session: DbSession, access: ProjectMember) -> TaxonomyTree:
    version = service.current_version(session, access.project)
    return _tree(version, access.project.taxonomy_version_id)


@router.get("/projects/{project_id}/taxonomy/versions", response_model=list[TaxonomyVersionSummary])
def list_versions(session: DbSession, access: ProjectMember) -> list[TaxonomyVersionSummary]:
    current = access.project.taxonomy_version_id
    return [_summary(v, current) for v in service.versions(session, access.project.id)]


@router.get("/projects/{project_id}/taxonomy/versions/{version_id}", response_model=TaxonomyTree)
def get_version(version_id: int, session: DbSession, access: ProjectMember) -> TaxonomyTree:
    version = service.version_tree(session, access.project.id, version_id)
    return _tree(version, access.project.taxonomy_version_id)


@router.post(
    "/projects/{project_id}/taxonomy", response_model=TaxonomyTree, status_code=status.HTTP_201_CREATED
)
def upload_version(
    body: TaxonomyUpload, response: Response, session: DbSession, access: ProjectLead
) -> TaxonomyTree:
    version, created = service.add_version(session, access.project, body.yaml, user_id=access.user.id)
    if not created:
        response.status_code = status.HTTP_200_OK
    tree = service.version_tree(session, access.project.id, version.id)
    return _tree(tree, access.project.taxonomy_version_id)
