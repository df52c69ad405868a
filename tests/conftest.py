"""Test fixtures: the suite runs on SQLite and on a real Postgres, migrated by the real migrations.

PostgreSQL and Redis are taken from AA_TEST_POSTGRES_URL / AA_TEST_REDIS_URL (defaults: the
local servers). Without them a test that needs one is skipped with the reason; under CI=true it
fails instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "AA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(service: str, reason: str) -> None:
    message = f"{service} is not available ({reason})"
    if IN_CI:
        pytest.fail(f"{message}; under CI=true nothing that needs it may skip")
    pytest.skip(message)


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def create_postgres_database() -> str:
    """A fresh, empty database on the test server; returns its URL."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = f"aa_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # any connection failure means the server is not there
        unavailable("PostgreSQL", f"{POSTGRES_ADMIN_URL}: {type(exc).__name__}")
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of each kind, shared by the session and emptied between tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
        migrate(url)
        yield url
        return
    url = create_postgres_database()
    migrate(url)
    yield url
    drop_postgres_database(url)


def _empty_all_tables(url: str) -> None:
    from server.orm import Base

    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # DELETE and restarting the id sequences is ~20x faster than TRUNCATE on small tables.
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            for table in Base.metadata.sorted_tables:
                if "id" in table.c:
                    conn.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), 1, false)")
                    )
        else:
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text("PRAGMA foreign_keys=ON"))
    engine.dispose()


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Settings for one test: its own data folder and source root; jobs run inline."""
    from server.core import jobs, runtime

    _empty_all_tables(database_url)
    data_dir = tmp_path / "data"
    sources = tmp_path / "sources"
    sources.mkdir()
    values = {
        "AA_DATA_DIR": str(data_dir),
        "AA_DATABASE_URL": database_url,
        "AA_SOURCE_ROOTS": f'["{sources}"]',
        "AA_JOBS_EAGER": "true",
        "AA_ADMIN_PASSWORD": "",
        # Each test starts an app of its own; the start-up warm-up has its own test.
        "AA_WARM_UP": "false",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    runtime.reset()
    from server.worker import install_job_sender

    install_job_sender()
    yield {"data_dir": data_dir, "sources": sources, "database_url": database_url}
    jobs.configure(None)
    runtime.reset()


@pytest.fixture
def db(env: dict[str, Any]) -> Any:
    from server.core import runtime

    return runtime.database()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible server process on localhost (moto), for the whole session; tests
    make a bucket of their own. Credentials are moto's test values."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the session's S3 server, with the AWS variables pointing at it."""
    import s3fs

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"aa-test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_server}, skip_instance_cache=True).mkdir(bucket)
    return bucket
