"""The command-line entry point: `annotate-anyone <command>`.

`run` starts the whole engine (API, CPU worker, beat) on whatever the settings name: the embedded
default (SQLite, local files, a broker folder) or Postgres and Redis.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from server.core import runtime
from server.core.config import Settings, ensure_secret, get_settings
from server.core.errors import DomainError
from server.exports.cli import export as export_command
from server.exports.cli import export_documents as export_documents_command
from server.flywheel import cli as flywheel_cli
from server.interchange.cli import import_labelstudio as import_labelstudio_command

ROOT = Path(__file__).resolve().parents[1]


def _migrate(settings: Settings) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    command.upgrade(config, "head")


def _prepare(settings: Settings) -> tuple[str, str | None]:
    """Folders, secret, schema and the first admin. Returns (admin email, new password or None)."""
    from server.auth import service as auth_service

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for root in settings.source_roots:
        root.mkdir(parents=True, exist_ok=True)
    if settings.uses_filesystem_broker:
        settings.broker_folder().mkdir(parents=True, exist_ok=True)
    ensure_secret(settings)
    _migrate(settings)
    with runtime.database().session_scope() as session:
        user, password = auth_service.ensure_admin(
            session, settings.admin_email, settings.admin_password or None
        )
        return user.email, password


@click.group()
def main() -> None:
    """Annotate Anyone: a human-AI data engine for human-centric text-to-image datasets."""


@main.command()
def migrate() -> None:
    """Upgrade the database schema to the latest migration."""
    _migrate(get_settings())
    click.echo("database is at the latest migration")


@main.command("create-admin")
def create_admin() -> None:
    """Create the first admin (AA_ADMIN_EMAIL / AA_ADMIN_PASSWORD, or a printed random password)."""
    email, password = _prepare(get_settings())
    click.echo(f"admin: {email}" + (f"  password: {password}" if password else " (exists)"))


@main.command("reset-password")
@click.argument("email")
def reset_password(email: str) -> None:
    """Give an account a new random password and print it once."""
    from server.auth import repository
    from server.core.security import hash_password, random_password

    with runtime.database().session_scope() as session:
        user = repository.user_by_email(session, email)
        if user is None:
            raise click.ClickException(f"no user with email {email}")
        password = random_password()
        user.password_hash = hash_password(password)
    click.echo(f"{email}  password: {password}")


def _demo_project(settings: Settings, count: int, seed: int, slug: str) -> tuple[int, bool]:
    """Create the demo project and start ingesting `count` synthetic people through the real
    ingestion path. Returns (project id, created)."""
    from server.auth import repository as auth_repository
    from server.demo.synthetic import generate_dataset
    from server.projects import repository as projects_repository
    from server.projects import service as projects
    from server.sources import service as sources

    with runtime.database().session_scope() as session:
        existing = projects_repository.project_by_slug(session, slug)
        if existing is not None:
            return existing.id, False
    root = settings.source_roots[0]
    folder = root / f"{slug}-people-{count}-seed{seed}"
    if not (folder / "ground_truth.jsonl").exists():
        click.echo(f"drawing {count} synthetic people into {folder} ...")
        generate_dataset(folder, count, seed=seed)
    with runtime.database().session_scope() as session:
        admin = auth_repository.user_by_email(session, settings.admin_email)
        assert admin is not None
        project = projects.create_project(
            session,
            admin,
            "Demo: synthetic people",
            slug=slug,
            description="Generated people with known ground truth.",
        )
        source = sources.create_folder_source(
            session,
            project,
            "synthetic people",
            str((folder / "images").relative_to(root)),
            settings.source_roots,
            licence="generated",
            consent="not applicable (synthetic)",
            user_id=admin.id,
        )
        sources.start_run(session, source)
        return project.id, True


@main.command()
@click.option("--count", default=500, show_default=True, help="synthetic people to draw")
@click.option("--seed", default=0, show_default=True)
@click.option("--slug", default="demo", show_default=True, help="the demo project's slug")
@click.option("--wait/--no-wait", default=False, help="wait until the images are ingested and analysed")
@click.option("--simulate", "rounds", default=0, help="run R flywheel rounds with simulated annotators")
@click.option("--batch", default=100, show_default=True, help="new people per simulated round")
def demo(count: int, seed: int, slug: str, wait: bool, rounds: int, batch: int) -> None:
    """Create a demo project of synthetic people (ground truth kept in a sidecar file).

    With --simulate R, a second project (`<slug>-flywheel`, the taxonomy cut to what the drawings
    show) runs R flywheel rounds: new people arrive, a simulated annotator works the real queue
    from the ground truth, a round trains, is judged and re-routes."""
    from server.worker import install_job_sender

    settings = get_settings()
    admin_email, _ = _prepare(settings)
    install_job_sender()
    if rounds:
        _simulate(settings, admin_email, f"{slug}-flywheel", rounds, batch, seed)
        return
    project_id, created = _demo_project(settings, count, seed, slug)
    click.echo(f"demo project {slug} (id {project_id}) " + ("created; ingesting" if created else "exists"))
    if wait:
        _wait_ready(project_id, count, timeout=600)


def _simulate(settings: Settings, admin_email: str, slug: str, rounds: int, batch: int, seed: int) -> None:
    from server.auth import repository as auth_repository
    from server.demo import simulate

    with runtime.database().session_scope() as session:
        admin = auth_repository.user_by_email(session, admin_email)
        assert admin is not None
        admin_id = admin.id
    eval_size = min(100, max(1, batch // 4))
    project_id = simulate.create_project(admin_id, slug, eval_size=eval_size, audit_share=0.1)
    click.echo(f"flywheel demo project {slug} (id {project_id}): {rounds} rounds of {batch} people")
    for summary in simulate.run_rounds(
        project_id,
        admin_id,
        settings.source_roots[0],
        rounds=rounds,
        batch=batch,
        seed=seed,
        eval_size=eval_size,
    ):
        click.echo(
            f"round {summary['round']}: {summary['status']}; {summary['human_decisions']} fields decided "
            f"by people for {summary['images']} new images; {'; '.join(map(str, summary['reasons']))}"
        )


def _wait_ready(project_id: int, count: int, timeout: float) -> None:
    from server.images import repository as images

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runtime.database().session_scope() as session:
            stages = images.stage_counts(session, project_id)
        done = sum(n for stage, n in stages.items() if stage != "pooled")
        if done >= count:
            click.echo(f"project {project_id}: {stages}")
            return
        time.sleep(1)
    raise click.ClickException(f"timed out; stages so far: {stages}")


@main.command()
@click.option("--project", "slug", required=True, help="project slug")
@click.option("--folder", required=True, help="folder relative to a source root (AA_SOURCE_ROOTS)")
@click.option("--name", default=None, help="source name (default: the folder)")
def ingest(slug: str, folder: str, name: str | None) -> None:
    """Ingest a folder into a project (runs on the workers; progress via the API)."""
    from server.projects import repository as projects_repository
    from server.sources import service as sources
    from server.worker import install_job_sender

    settings = get_settings()
    install_job_sender()
    with runtime.database().session_scope() as session:
        project = projects_repository.project_by_slug(session, slug)
        if project is None:
            raise click.ClickException(f"no project {slug!r}")
        try:
            source = sources.create_folder_source(
                session, project, name or folder, folder, settings.source_roots
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
        run = sources.start_run(session, source)
        run_id = run.id
    click.echo(f"ingest run {run_id} started; GET /api/v1/projects/{project.id}/ingest-runs/{run_id}")


def _processes(settings: Settings) -> list[tuple[str, list[str]]]:
    python = sys.executable
    return [
        (
            "api",
            [
                python,
                "-m",
                "uvicorn",
                "server.main:create_app",
                "--factory",
                "--host",
                settings.host,
                "--port",
                str(settings.port),
                "--log-level",
                "warning",
            ],
        ),
        (
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "server.worker",
                "worker",
                "-Q",
                "cpu,gpu",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--hostname",
                "cpu@%h",
            ],
        ),
        ("beat", [python, "-m", "celery", "-A", "server.worker", "beat", "--loglevel", "WARNING"]),
    ]


def _wait_healthy(
    url: str, children: list[tuple[str, subprocess.Popen[Any]]], timeout: float
) -> dict[str, Any]:
    """Wait until the API answers and a worker has reported in, so the banner comes last."""
    import httpx

    report: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, child in children:
            if child.poll() is not None:
                raise click.ClickException(f"the {name} process exited with {child.returncode}")
        try:
            report = httpx.get(f"{url}/api/v1/health", timeout=2).json()
            if report.get("ok"):
                return report
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.5)
    return report


@main.command()
@click.option("--demo", "demo_count", default=500, show_default=True, help="demo people to create (0: none)")
def run(demo_count: int) -> None:
    """Start the whole engine: API, worker and beat. Ctrl-C stops everything it started."""
    settings = get_settings()
    email, password = _prepare(settings)
    children: list[tuple[str, subprocess.Popen[Any]]] = []

    def stop(*_: Any) -> None:
        for _name, child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for _name, child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()

    def terminated(*_: Any) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminated)
    try:
        for name, command in _processes(settings):
            children.append((name, subprocess.Popen(command, cwd=ROOT)))
        if demo_count:
            from server.worker import install_job_sender

            install_job_sender()
            project_id, _ = _demo_project(settings, demo_count, 0, "demo")
        url = f"http://{settings.host}:{settings.port}"
        health = _wait_healthy(url, children, timeout=120)
        click.echo("")
        click.echo(
            f"Annotate Anyone is running at {url}  (API docs: {url}/api/docs, health: {url}/api/v1/health)"
        )
        click.echo(
            f"login: {email}  "
            + (
                f"password: {password}  (shown once)"
                if password
                else "password: as set before (annotate-anyone reset-password EMAIL)"
            )
        )
        if demo_count:
            click.echo(
                f"demo project: id {project_id}, {demo_count} synthetic people "
                f"(GET {url}/api/v1/projects/{project_id}/images/stats)"
            )
        click.echo(
            f"data: {settings.data_dir}   database: {settings.database_url.split('@')[-1]}   "
            f"health: {'ok' if health.get('ok') else health}"
        )
        click.echo("Ctrl-C stops everything.")
        while True:
            for name, child in children:
                if child.poll() is not None:
                    raise click.ClickException(f"the {name} process exited with {child.returncode}")
            time.sleep(1)
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        stop()


main.add_command(export_command)
main.add_command(export_documents_command)
main.add_command(import_labelstudio_command)
main.add_command(flywheel_cli.round_group)
main.add_command(flywheel_cli.eval_set)

if __name__ == "__main__":
    main()
