"""The closed vocabularies stored as strings (portable across SQLite and Postgres)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    annotator = "annotator"
    reviewer = "reviewer"
    lead = "lead"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]


_ROLE_RANK = {Role.annotator: 0, Role.reviewer: 1, Role.lead: 2, Role.admin: 3}


class ImageStage(StrEnum):
    pooled = "pooled"  # stored, not yet analyzed
    filtered = "filtered"  # kept out of the dataset, with a reason
    ready = "ready"  # passed analysis: has its subject; waiting for its embedding
    embedded = "embedded"  # embedding cached for the project's backbone; waiting for pre-labels
    prelabeled = "prelabeled"  # the active labeler's predictions are stored


class SourceKind(StrEnum):
    folder = "folder"
    upload = "upload"
    url_list = "url_list"
    s3 = "s3"  # the images under an S3 prefix
    label_studio = "label_studio"


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class LabelState(StrEnum):
    predicted = "predicted"
    auto_accepted = "auto_accepted"
    verified = "verified"
    gold = "gold"


class AssignmentKind(StrEnum):
    review = "review"
    audit = "audit"
    eval = "eval"
    gold = "gold"
    adjudicate = "adjudicate"


class AssignmentStatus(StrEnum):
    queued = "queued"
    leased = "leased"
    submitted = "submitted"
    skipped = "skipped"
    cancelled = "cancelled"


class ModelStatus(StrEnum):
    candidate = "candidate"
    active = "active"
    retired = "retired"
    rejected = "rejected"


class CategoryKind(StrEnum):
    single = "single"
    multi = "multi"
    boolean = "boolean"
    text = "text"
