"""docker-compose.yml is for users (no Docker engine here): it must parse and hold together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"postgres", "redis", "minio", "bucket", "migrate", "api", "worker", "gpu-worker", "beat"}
LONG_RUNNING_WITH_HEALTH = {"postgres", "redis", "minio", "api", "worker", "gpu-worker"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_file_names_every_service_of_the_production_topology(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES


def test_every_dependency_and_volume_is_declared(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith(("/", ".")):
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"


def test_services_that_stay_up_have_health_checks(compose: dict[str, Any]) -> None:
    for name in LONG_RUNNING_WITH_HEALTH:
        assert compose["services"][name].get("healthcheck", {}).get("test"), name


def test_app_services_run_our_entry_points_on_postgres_and_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "api", "worker", "gpu-worker", "beat"):
        service = services[name]
        assert service["build"] == ".", name
        env = service["environment"]
        assert env["AA_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert env["AA_BROKER_URL"].startswith("redis://"), name
        assert env["AA_MODE"] == "production", name
        assert env["AA_STORAGE__BACKEND"] == "s3" and env["AA_STORAGE__BUCKET"], name
        # The secret comes from the environment, and compose refuses to start without it.
        assert ":?" in env["AA_SECRET_KEY"], name
    assert services["api"]["command"][:2] == ["uvicorn", "server.main:create_app"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "server.worker", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "server.worker", "beat"]
    assert services["migrate"]["command"] == ["annotate-anyone", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "gpu-worker", "beat"):
        for once in ("migrate", "bucket"):
            assert services[name]["depends_on"][once]["condition"] == "service_completed_successfully"


def test_the_gpu_worker_is_one_process_on_one_reserved_device(compose: dict[str, Any]) -> None:
    gpu = compose["services"]["gpu-worker"]
    command = gpu["command"]
    assert command[:4] == ["celery", "-A", "workers.gpu", "worker"]
    assert command[command.index("-Q") + 1] == "gpu"
    assert command[command.index("--concurrency") + 1] == "1"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"] and len(device["device_ids"]) == 1
    assert gpu["environment"]["AA_DEVICE"] == f"cuda:{device['device_ids'][0]}"


def test_the_image_the_services_build_exists() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and "web/dist" in dockerfile
