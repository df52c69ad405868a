from __future__ import annotations

from fastapi import APIRouter, status

from server.auth.deps import AdminUser, CurrentUser
from server.core.http import DbSession
from server.orm import Project
from server.orm.enums import Role
from server.projects import repository, service
from server.projects.deps import ProjectLead, ProjectMember
from server.projects.schemas import MemberAdd, MemberOut, ProjectCreate, ProjectOut, ProjectSettings

router = APIRouter(tags=["projects"])


def _out(project: Project, role: str | None) -> ProjectOut:
    return ProjectOut(
        id=project.id,
        name=project.name,
        slug=project.slug,
        description=project.description,
        taxonomy_version_id=project.taxonomy_version_id,
        settings=service.settings_of(project),
        created_at=project.created_at,
        role=Role(role) if role else None,
    )


@router.post("/projects", response_model=ProjectOut, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, session: DbSession, user: AdminUser) -> ProjectOut:
    project = service.create_project(
        session,
        user,
        body.name,
        slug=body.slug,
        description=body.description,
        taxonomy=body.taxonomy,
        settings=body.settings,
    )
    return _out(project, Role.lead.value)


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(session: DbSession, user: CurrentUser) -> list[ProjectOut]:
    return [_out(p, role) for p, role in repository.visible_projects(session, user)]


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(access: ProjectMember) -> ProjectOut:
    return _out(access.project, access.role.value)


@router.put("/projects/{project_id}/settings", response_model=ProjectOut)
def update_settings(body: ProjectSettings, access: ProjectLead) -> ProjectOut:
    service.update_settings(access.project, body)
    return _out(access.project, access.role.value)


@router.get("/projects/{project_id}/members", response_model=list[MemberOut])
def list_members(session: DbSession, access: ProjectMember) -> list[MemberOut]:
    return [
        MemberOut(user_id=u.id, email=u.email, display_name=u.display_name, role=Role(m.role))
        for m, u in repository.members(session, access.project.id)
    ]


@router.post("/projects/{project_id}/members", response_model=MemberOut, status_code=status.HTTP_201_CREATED)
def add_member(body: MemberAdd, session: DbSession, access: ProjectLead) -> MemberOut:
    access.require(body.role)  # nobody grants a role above their own
    membership, user = service.add_member(session, access.project, body.email, body.role)
    return MemberOut(
        user_id=user.id, email=user.email, display_name=user.display_name, role=Role(membership.role)
    )


@router.delete("/projects/{project_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(user_id: int, session: DbSession, access: ProjectLead) -> None:
    service.remove_member(session, access.project, user_id)


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(session: DbSession, access: ProjectMember, _: AdminUser) -> None:
    service.soft_delete(access.project)
