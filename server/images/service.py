"""Images: storing validated bytes once per project and serving them by id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from server.core.config import IngestSettings
from server.core.errors import NotFound
from server.core.storage import ObjectStorage
from server.core.time import utcnow
from server.core.upsert import insert_ignore_returning
from server.images import repository
from server.images.decoding import DecodedImage, decode_image, make_thumbnail
from server.orm import Image, Source, Subject, User
from server.orm.enums import ImageStage, Role
from server.projects.policy import access

_EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}


@dataclass(frozen=True)
class Added:
    image_id: int | None  # None: the same bytes were already in the project
    sha256: str

    @property
    def duplicate(self) -> bool:
        return self.image_id is None


def decode(data: bytes, settings: IngestSettings) -> DecodedImage:
    """Raises ImageRejected with a reason."""
    return decode_image(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_frames=settings.max_frames,
    )


def add_image(
    session: Session,
    storage: ObjectStorage,
    project_id: int,
    source: Source,
    name: str,
    decoded: DecodedImage,
    settings: IngestSettings,
    min_side: int,
) -> Added:
    """Store the decoded image unless the project has the same bytes already.

    An image under the minimum resolution is kept, filtered with its reason, and never analysed.
    """
    if repository.image_id_by_sha(session, project_id, decoded.sha256_original) is not None:
        return Added(image_id=None, sha256=decoded.sha256_original)
    # Content-addressed keys: a retried batch rewrites the same objects, harmlessly.
    digest = decoded.sha256
    key = f"images/{digest[:2]}/{digest}.{_EXTENSIONS[decoded.format]}"
    thumb_key = f"thumbnails/{digest[:2]}/{digest}.webp"
    storage.put(key, decoded.data)
    storage.put(thumb_key, make_thumbnail(decoded.data, settings.thumbnail_side))
    now = utcnow()
    too_small = min(decoded.width, decoded.height) < min_side
    stage = ImageStage.filtered if too_small else ImageStage.pooled
    image_id = insert_ignore_returning(
        session,
        Image.__table__,  # type: ignore[arg-type]
        {
            "project_id": project_id,
            "source_id": source.id,
            "sha256": decoded.sha256_original,
            "storage_key": key,
            "thumbnail_key": thumb_key,
            "original_name": name[-1000:],
            "mime": decoded.mime,
            "width": decoded.width,
            "height": decoded.height,
            "bytes": len(decoded.data),
            "stage": stage.value,
            "filter_reason": None if stage is ImageStage.pooled else "min_resolution",
            "stage_changed_at": now,
            "quality": {},
            "licence": source.licence,
            "consent": source.consent,
            "created_at": now,
        },
        ["project_id", "sha256"],
    )
    return Added(image_id=int(image_id) if image_id is not None else None, sha256=decoded.sha256_original)


def image_for(session: Session, user: User, image_id: int) -> Image:
    """The image, if the caller is a member of its project; otherwise 404."""
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound("no such image")
    access(session, user, image.project_id, Role.annotator)
    return image


def subject_for(session: Session, user: User, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise NotFound("no such subject")
    access(session, user, subject.project_id, Role.annotator)
    return subject


def stage_counts(session: Session, project_id: int) -> dict[str, int]:
    return repository.stage_counts(session, project_id)
