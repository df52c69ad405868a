from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from server.core.http import DbSession
from server.projects.deps import ProjectLead
from server.webhooks import service
from server.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookCreated, WebhookOut

router = APIRouter(tags=["webhooks"])


@router.post(
    "/projects/{project_id}/webhooks", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED
)
def create_webhook(body: WebhookCreate, session: DbSession, grant: ProjectLead) -> WebhookCreated:
    """Signed notifications of the project's events; the secret is shown once."""
    webhook, secret = service.create(session, grant, body)
    return WebhookCreated(**WebhookOut.model_validate(webhook).model_dump(), secret=secret)


@router.get("/projects/{project_id}/webhooks", response_model=list[WebhookOut])
def list_webhooks(session: DbSession, grant: ProjectLead) -> list[WebhookOut]:
    return [WebhookOut.model_validate(w) for w in service.of_project(session, grant.project.id)]


@router.delete("/projects/{project_id}/webhooks/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: int, session: DbSession, grant: ProjectLead) -> None:
    service.remove(session, grant.project.id, webhook_id)


@router.get("/projects/{project_id}/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    webhook_id: int, session: DbSession, grant: ProjectLead, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[DeliveryOut]:
    return [
        DeliveryOut.model_validate(d)
        for d in service.deliveries(session, grant.project.id, webhook_id, limit)
    ]
