"""SQLAlchemy 2.0 mapped classes ("model" is kept for ML models). Importing this registers all."""

from server.orm.assignments import Assignment, GoldAnswer, Submission
from server.orm.base import Base
from server.orm.dashboard import DashboardFigure
from server.orm.exports import Export, ExportRefreshMark, Snapshot
from server.orm.flywheel import EvalSetMember, Round
from server.orm.identity import ApiToken, AuthSession, Invite, LoginAttempt, User
from server.orm.images import Embedding, Image, Subject
from server.orm.labels import Label, LabelEvent, ModelVersion, Prediction
from server.orm.ops import WorkerHeartbeat
from server.orm.projects import Membership, Project
from server.orm.sources import IngestItem, IngestRejection, IngestRun, Source
from server.orm.taxonomy import Category, CategoryValue, Region, TaxonomyVersion
from server.orm.webhooks import Webhook, WebhookDelivery

__all__ = [
    "ApiToken",
    "Assignment",
    "AuthSession",
    "Base",
    "Category",
    "CategoryValue",
    "DashboardFigure",
    "Embedding",
    "EvalSetMember",
    "Export",
    "ExportRefreshMark",
    "GoldAnswer",
    "Image",
    "IngestItem",
    "Invite",
    "IngestRejection",
    "IngestRun",
    "Label",
    "LabelEvent",
    "LoginAttempt",
    "Membership",
    "ModelVersion",
    "Prediction",
    "Project",
    "Region",
    "Round",
    "Snapshot",
    "Source",
    "Subject",
    "Submission",
    "TaxonomyVersion",
    "User",
    "Webhook",
    "WebhookDelivery",
    "WorkerHeartbeat",
]
