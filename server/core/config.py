"""The one Settings object. Every knob is an `AA_` environment variable (nested groups use `__`).

Defaults are the embedded stack: SQLite and a local folder under `AA_DATA_DIR`, and a Celery
broker that needs no server (kombu's filesystem transport in the same folder). Pointing
`AA_DATABASE_URL` and `AA_BROKER_URL` at Postgres and Redis gives the production topology.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_SECRET = "change-me"


class IngestSettings(BaseModel):
    max_upload_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_frames: int = 1
    min_side: int = 256
    batch_size: int = 32
    thumbnail_side: int = 256


class AuthSettings(BaseModel):
    session_idle_minutes: int = 60 * 12
    session_absolute_hours: int = 24 * 7
    cookie_secure: bool = False


class StorageSettings(BaseModel):
    """Where image bytes, thumbnails, masks and model artifacts live: `local` (a folder under
    AA_DATA_DIR) or `s3` (a bucket; credentials from the standard AWS variables, and for MinIO
    or another S3-compatible store its `endpoint_url`). Workers read the same objects by URI."""

    backend: Literal["local", "s3"] = "local"
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("AA_STORAGE__BUCKET is required when AA_STORAGE__BACKEND is s3")
        return self


class EgressSettings(BaseModel):
    """Fetching URLs users chose (server/core/egress.py). Public addresses only, unless an
    on-premises deployment names networks it trusts here (CIDR, e.g. ["10.20.0.0/16"])."""

    allow_networks: list[str] = Field(default_factory=list)
    timeout_seconds: float = 30.0
    max_redirects: int = 5


class ReconcilerSettings(BaseModel):
    interval_seconds: float = 60.0
    stuck_after_seconds: float = 300.0
    batch_limit: int = 1000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="AA_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    mode: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    broker_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = ""
    admin_email: str = "admin@example.com"
    admin_password: str = ""
    # Folder sources may only name folders inside these roots.
    source_roots: list[Path] = Field(default_factory=list)
    # S3 sources may only name prefixes under these (s3://bucket/prefix); none: no S3 sources.
    source_s3_prefixes: list[str] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool = False
    # Run Celery tasks inline (tests of services that enqueue work without a worker).
    jobs_eager: bool = False
    worker_heartbeat_seconds: float = 10.0
    # An API process opens connections and compiles the review queue's statements before it
    # takes requests (server.warmup); tests that start an app per test turn it off.
    warm_up: bool = True

    ingest: IngestSettings = IngestSettings()
    auth: AuthSettings = AuthSettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()
    egress: EgressSettings = EgressSettings()
    storage: StorageSettings = StorageSettings()

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'annotate-anyone.db'}"
        if not self.broker_url:
            self.broker_url = f"filesystem://{self.data_dir / 'broker'}"
        if not self.source_roots:
            self.source_roots = [self.data_dir / "sources"]
        self.source_roots = [p.expanduser().resolve() for p in self.source_roots]
        if self.mode == "production":
            _require_strong_secret(self.secret_key)
        return self

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    def broker_folder(self) -> Path:
        return Path(self.broker_url.removeprefix("filesystem://"))


def _require_strong_secret(secret: str) -> None:
    if not secret or len(secret) < 32 or EXAMPLE_SECRET in secret:
        raise ValueError(
            "AA_SECRET_KEY must be set to a random string of at least 32 characters in production"
        )


def ensure_secret(settings: Settings) -> str:
    """The secret for development: generated on first run and kept in the data folder."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


@lru_cache
def get_settings() -> Settings:
    return Settings()
