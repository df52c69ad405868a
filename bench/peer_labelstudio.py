"""The peer's side of issue 4: Label Studio 1.23.2 under the same load as bench/review_api.py.

Label Studio as installed from PyPI (`pip install label-studio==1.23.2`, in its own venv, created
when missing; never in this project's venv) and started with `label-studio start` (Django
runserver, SQLite), on a fresh data folder. Setup, all through its HTTP API:

- the first user from LABEL_STUDIO_USERNAME / _PASSWORD / _USER_TOKEN, with legacy tokens enabled
  for the organization (`--enable-legacy-api-token`), so that `Authorization: Token ...` works;
- K annotators by the signup form (`/user/signup/`, they join the one organization), each one's
  token from `GET /api/current-user/token`;
- a project whose labeling config has an <Image>, 15 single-choice <Choices> (3 to 8 choices) and
  a caption <TextArea>; N tasks with one prediction each (every control), imported in bulk by
  `POST /api/projects/{id}/import`, and the project set to show them (model_version). The image is
  a tiny data: URI (never fetched by the client).

Load: K annotators (one httpx AsyncClient each) loop {next -> think -> submit -> think} for
`--seconds`: next is `GET /api/projects/{id}/next/` (the label stream's next task, the only
next-task endpoint of 1.23.2), submit is `POST /api/tasks/{id}/annotations/?project={id}` with the
prediction's result for every control (accepted as is), `lead_time` and `parent_prediction`, as the
editor sends it. Latency is measured from just before sending to the response read.

Afterwards, from the client's log and Label Studio's SQLite file: tasks served to two or more
annotators, tasks with two or more annotations, acknowledged annotations missing from the database.
Telemetry and error reporting are switched off (LABEL_STUDIO_COLLECT_ANALYTICS=false,
LABEL_STUDIO_SENTRY_DSN=""): a benchmark does not post to tele.labelstud.io or Sentry, and this
machine cannot reach them. Everything else is Label Studio's default, including its
DatabaseIsLockedRetryMiddleware (a request that hits "database is locked" is replayed after 1 s,
1.5 s, ... up to 15 times): that is part of what the annotators wait for. The CPU and I/O
pressure (Linux PSI) during the load are printed with the figures, as in bench/review_api.py.

    .venv/bin/python bench/peer_labelstudio.py --tasks 10000 --annotators 8 --seconds 60 --think-ms 0
    .venv/bin/python bench/peer_labelstudio.py --tasks 10000 --annotators 1

Progress goes to stderr; the last line on stdout is one JSON object. Not a test: never collected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from review_api import _run, free_port, log, percentiles, pressure_us, report_load  # noqa: E402

LS_VERSION = "1.23.2"
PEER = f"label-studio {LS_VERSION}"
DEFAULT_VENV = f"~/.cache/annotate-anyone/label-studio-{LS_VERSION}"
ADMIN_EMAIL = "bench-admin@example.com"
PASSWORD = "Bench-password-not-secret-42"
MODEL_VERSION = "bench-1"
N_ATTRIBUTES = 15
IMPORT_CHUNK = 1000
# A 1x1 grey PNG: the task has an image the client never downloads.
IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgAB4iG8MwAA"
    "AABJRU5ErkJggg=="
)


# -- Label Studio: install, start, stop --------------------------------------------------------


def ensure_label_studio(venv: Path) -> Path:
    """The `label-studio` executable of `venv`, installed there first when missing."""
    executable = venv / "bin" / "label-studio"
    python = venv / "bin" / "python"
    if not executable.exists():
        log(f"installing label-studio=={LS_VERSION} into {venv} (a few minutes)")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"label-studio=={LS_VERSION}"],
            check=True,
            stdout=sys.stderr,
        )
    version = subprocess.run(
        [str(python), "-c", "import label_studio; print(label_studio.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if version != LS_VERSION:
        raise SystemExit(f"{venv} holds label-studio {version}, not {LS_VERSION}")
    return executable


def start_label_studio(
    executable: Path, port: int, data_dir: Path, admin_token: str, log_path: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": admin_token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_SENTRY_DSN": "",
    }
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    command = [
        str(executable),
        "start",
        "--no-browser",
        "--internal-host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--enable-legacy-api-token",
    ]
    out = log_path.open("wb")
    return subprocess.Popen(command, cwd=data_dir, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(base: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 900) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"label-studio exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2, trust_env=False).json().get("status") == "UP":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"label-studio was not healthy in {timeout} s:\n{log_path.read_text()[-4000:]}")


def stop_label_studio(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, which runserver does not catch (after a run, SIGINT had not stopped it in 15 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- setup -------------------------------------------------------------------------------------


def attributes() -> list[tuple[str, list[str]]]:
    """15 single-choice attributes with 3 to 8 choices each."""
    return [(f"attr{i:02d}", [f"a{i:02d}_v{j}" for j in range(3 + i % 6)]) for i in range(N_ATTRIBUTES)]


def label_config() -> str:
    lines = ["<View>", '  <Image name="image" value="$image"/>']
    for name, choices in attributes():
        lines.append(f'  <Header value="{name}"/>')
        lines.append(f'  <Choices name="{name}" toName="image" choice="single" showInline="true">')
        lines.extend(f'    <Choice value="{value}"/>' for value in choices)
        lines.append("  </Choices>")
    lines.append('  <TextArea name="caption" toName="image" maxSubmissions="1" editable="true"/>')
    lines.append("</View>")
    return "\n".join(lines)


def prediction_result(rng: random.Random) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [
        {
            "from_name": name,
            "to_name": "image",
            "type": "choices",
            "value": {"choices": [rng.choice(choices)]},
        }
        for name, choices in attributes()
    ]
    result.append(
        {
            "from_name": "caption",
            "to_name": "image",
            "type": "textarea",
            "value": {"text": [f"a person, photo {rng.randrange(10**6)}"]},
        }
    )
    return result


def make_tasks(n: int) -> list[dict[str, Any]]:
    rng = random.Random(20261126)
    return [
        {
            "data": {"image": IMAGE, "ref": i},
            "predictions": [
                {
                    "model_version": MODEL_VERSION,
                    "score": round(0.3 + 0.69 * rng.random(), 4),
                    "result": prediction_result(rng),
                }
            ],
        }
        for i in range(n)
    ]


def signup(base: str, email: str) -> str:
    """A new user by the signup form (joins the organization); their API token."""
    import httpx

    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        client.get("/user/signup/").raise_for_status()
        csrf = client.cookies.get("csrftoken")
        response = client.post(
            "/user/signup/",
            data={"csrfmiddlewaretoken": csrf or "", "email": email, "password": PASSWORD},
            headers={"X-CSRFToken": csrf or "", "Referer": f"{base}/user/signup/"},
        )
        if response.status_code != 302:
            raise SystemExit(f"signup {email}: {response.status_code} {response.text[:1000]}")
        response = client.get("/api/current-user/token")
        response.raise_for_status()
        return str(response.json()["token"])


@dataclass
class Setup:
    project_id: int
    tokens: list[str]
    user_ids: list[int]
    import_seconds: float


def prepare(base: str, admin_token: str, n_tasks: int, n_annotators: int) -> Setup:
    import httpx

    admin = httpx.Client(
        base_url=base, timeout=600, trust_env=False, headers={"Authorization": f"Token {admin_token}"}
    )
    with admin:
        admin.get("/api/current-user/whoami").raise_for_status()
        start = time.perf_counter()
        tokens, user_ids = [], []
        for i in range(n_annotators):
            token = signup(base, f"annotator{i:03d}@example.com")
            me = httpx.get(
                f"{base}/api/current-user/whoami",
                headers={"Authorization": f"Token {token}"},
                trust_env=False,
                timeout=60,
            )
            me.raise_for_status()
            tokens.append(token)
            user_ids.append(int(me.json()["id"]))
        log(f"{n_annotators} annotators signed up in {time.perf_counter() - start:.1f} s")

        response = admin.post(
            "/api/projects/",
            json={"title": f"Peer bench {uuid.uuid4().hex[:6]}", "label_config": label_config()},
        )
        if response.status_code != 201:
            raise SystemExit(f"create project: {response.status_code} {response.text[:2000]}")
        project_id = int(response.json()["id"])

        tasks = make_tasks(n_tasks)
        start = time.perf_counter()
        imported = 0
        for i in range(0, n_tasks, IMPORT_CHUNK):
            response = admin.post(f"/api/projects/{project_id}/import", json=tasks[i : i + IMPORT_CHUNK])
            if response.status_code != 201:
                raise SystemExit(f"import: {response.status_code} {response.text[:2000]}")
            body = response.json()
            imported += int(body.get("task_count", 0))
            log(
                f"  imported {imported}/{n_tasks} tasks "
                f"({body.get('prediction_count')} predictions in this batch), "
                f"{time.perf_counter() - start:.1f} s"
            )
        import_seconds = time.perf_counter() - start
        if imported != n_tasks:
            raise SystemExit(f"imported {imported} tasks, not {n_tasks}")
        # Show the imported predictions as pre-annotations (Settings > Annotation > prelabeling).
        response = admin.patch(
            f"/api/projects/{project_id}",
            json={"model_version": MODEL_VERSION, "show_collab_predictions": True},
        )
        if response.status_code != 200:
            raise SystemExit(f"project settings: {response.status_code} {response.text[:2000]}")
        settings = response.json()
        log(
            f"project {project_id}: sampling {settings.get('sampling')!r}, maximum_annotations "
            f"{settings.get('maximum_annotations')}, model_version {settings.get('model_version')!r}"
        )
    return Setup(project_id, tokens, user_ids, import_seconds)


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Log:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    timeline: list[tuple[float, str, float]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    served: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # task -> annotators
    acked: list[tuple[int, int, int]] = field(default_factory=list)  # (annotator, task, annotation)
    without_prediction: int = 0
    empty_queue: int = 0

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(what)


def accept_prediction(task: dict[str, Any], out: Log) -> tuple[list[dict[str, Any]], int | None]:
    """The result the editor submits when the annotator accepts the pre-annotation unchanged."""
    predictions = task.get("predictions") or []
    if predictions:
        prediction = predictions[0]
        items, parent = prediction["result"], prediction.get("id")
    else:  # no pre-annotation shown (counted): values drawn as the predictions were
        out.without_prediction += 1
        items, parent = prediction_result(random.Random(task["id"])), None
    result = [
        {**item, "id": item.get("id") or secrets.token_hex(5), "origin": "prediction"} for item in items
    ]
    return result, parent


async def annotator(
    client: Any, index: int, project_id: int, think: float, start_at: float, stop_at: float, out: Log
) -> None:
    import httpx

    loop = asyncio.get_running_loop()
    clock = time.perf_counter
    await asyncio.sleep(max(0.0, start_at - loop.time()))
    while loop.time() < stop_at:
        t0 = clock()
        try:
            response = await client.get(f"/api/projects/{project_id}/next/")
        except httpx.HTTPError as exc:
            out.error(f"next: {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(think, 0.05))
            continue
        out.next_ms.append((clock() - t0) * 1000)
        out.timeline.append((t0, "next", out.next_ms[-1]))
        out.statuses[f"next {response.status_code}"] += 1
        if response.status_code == 404:
            out.empty_queue += 1
            await asyncio.sleep(max(think, 0.05))
            continue
        if response.status_code != 200:
            out.error(f"next: {response.status_code} {response.text[:200]}")
            await asyncio.sleep(max(think, 0.05))
            continue
        task = response.json()
        task_id = int(task["id"])
        out.served[task_id].add(index)
        started = datetime.now(UTC)
        result, parent = accept_prediction(task, out)
        if think:
            await asyncio.sleep(think)
        body: dict[str, Any] = {
            "result": result,
            "draft_id": None,
            "parent_prediction": parent,
            "parent_annotation": None,
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "lead_time": round((datetime.now(UTC) - started).total_seconds(), 3),
            "was_cancelled": False,
            "ground_truth": False,
            "project": str(project_id),
        }
        t0 = clock()
        try:
            response = await client.post(f"/api/tasks/{task_id}/annotations/?project={project_id}", json=body)
        except httpx.HTTPError as exc:
            out.error(f"submit: {type(exc).__name__}: {exc}")
            await asyncio.sleep(max(think, 0.05))
            continue
        out.submit_ms.append((clock() - t0) * 1000)
        out.timeline.append((t0, "submit", out.submit_ms[-1]))
        out.statuses[f"submit {response.status_code}"] += 1
        if response.status_code == 201:
            out.acked.append((index, task_id, int(response.json()["id"])))
        else:
            out.error(f"submit: {response.status_code} {response.text[:200]}")
        if think:
            await asyncio.sleep(think)


async def run_load(
    base: str, tokens: list[str], project_id: int, seconds: float, think: float
) -> tuple[Log, float, float]:
    import httpx

    clients = [
        httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
            trust_env=False,
            headers={"Authorization": f"Token {token}"},
        )
        for token in tokens
    ]
    out = Log()
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.2
    stop_at = begin + seconds
    stagger = think if think else 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(
        *(
            annotator(c, i, project_id, think, begin + stagger * i / len(clients), stop_at, out)
            for i, c in enumerate(clients)
        )
    )
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    for client in clients:
        await client.aclose()
    return out, wall, cpu


# -- checks ------------------------------------------------------------------------------------


def check(database: Path, project_id: int, out: Log) -> dict[str, int]:
    """Label Studio's SQLite file against the client's log."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT a.id, a.task_id, a.completed_by_id, a.was_cancelled FROM task_completion a "
            "JOIN task t ON t.id = a.task_id WHERE t.project_id = ?",
            (project_id,),
        ).fetchall()
        labeled = conn.execute(
            "SELECT count(*) FROM task WHERE project_id = ? AND is_labeled", (project_id,)
        ).fetchone()[0]
    per_task: dict[int, list[int]] = defaultdict(list)
    stored = set()
    for annotation_id, task_id, user_id, cancelled in rows:
        stored.add(int(annotation_id))
        if not cancelled:
            per_task[int(task_id)].append(int(user_id))
    annotated_twice = {t for t, users in per_task.items() if len(users) > 1}
    served_to_two = {t for t, annotators in out.served.items() if len(annotators) > 1}
    return {
        "annotations_stored": len(rows),
        "tasks_annotated": len(per_task),
        "tasks_labeled": int(labeled),
        "annotated_twice": len(annotated_twice),
        "annotated_by_two": sum(1 for users in per_task.values() if len(set(users)) > 1),
        "served_to_two": len(served_to_two),
        "served_to_two_and_annotated_twice": len(served_to_two & annotated_twice),
        "lost": sum(1 for _, _, annotation_id in out.acked if annotation_id not in stored),
    }


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think-ms", type=float, default=0.0, help="0 measures saturation")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--venv", default=DEFAULT_VENV, help="Label Studio's own venv (created when missing)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder (SQLite file, server log)")
    args = parser.parse_args()
    # A terminated bench still stops its Label Studio (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    venv = Path(args.venv).expanduser().resolve()
    if venv == (Path(__file__).resolve().parents[1] / ".venv").resolve():
        raise SystemExit("Label Studio must not go into this project's venv: pick another --venv")
    executable = ensure_label_studio(venv)
    data_dir = Path(tempfile.mkdtemp(prefix="aa-bench-labelstudio-"))
    server_log = data_dir / "server.log"
    admin_token = secrets.token_hex(20)
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    log(f"{PEER} from {venv}, data {data_dir}")
    process = None
    try:
        start = time.perf_counter()
        process = start_label_studio(executable, port, data_dir, admin_token, server_log)
        wait_healthy(base, process, server_log)
        log(f"label-studio start: healthy on {base} after {time.perf_counter() - start:.1f} s")
        setup = prepare(base, admin_token, args.tasks, args.annotators)

        think = args.think_ms / 1000.0
        pressure0 = {r: pressure_us(r) for r in ("cpu", "io")}
        out, wall, cpu = _run(run_load(base, setup.tokens, setup.project_id, args.seconds, think))
        pressure1 = {r: pressure_us(r) for r in ("cpu", "io")}
        load_average = os.getloadavg()
        stop_label_studio(process)
        if process.returncode not in (0, -signal.SIGTERM):
            log(f"label-studio exit code {process.returncode}")
        figures = check(data_dir / "label_studio.sqlite3", setup.project_id, out)
        # Requests that hit SQLite's lock and were replayed by DatabaseIsLockedRetryMiddleware, and
        # Label Studio's own complaints that a task was taken by more people than its overlap.
        server_lines = server_log.read_text(errors="replace").splitlines()
        locked = sum(1 for line in server_lines if "custom_exception_handler" in line and "is locked" in line)
        overlap_bugs = sum(1 for line in server_lines if "it's a bug" in line)
    finally:
        if process is not None:
            stop_label_studio(process)
        if args.keep:
            log(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)

    submits = len(out.acked)
    log(
        f"load: {wall:.1f} s wall, {len(out.next_ms)} next, {submits} submits acknowledged, "
        f"{out.empty_queue} empty-queue answers, {out.without_prediction} tasks served without prediction"
    )
    log(f"statuses: {dict(sorted(out.statuses.items()))}")
    log(f"next ms   {percentiles(out.next_ms)}  max {max(out.next_ms, default=0):.1f}")
    log(f"submit ms {percentiles(out.submit_ms)}  max {max(out.submit_ms, default=0):.1f}")
    pressure = report_load(out.timeline, args.seconds, wall, cpu, pressure0, pressure1, load_average)
    log(f"checks: {figures}")
    log(f"server log: {locked} 'database is locked' replays, {overlap_bugs} overlap errors (\"it's a bug\")")
    if out.error_samples:
        log("errors (first 10):\n  " + "\n  ".join(out.error_samples))
    result = {
        "peer": PEER,
        "tasks": args.tasks,
        "annotators": args.annotators,
        "seconds": args.seconds,
        "think_ms": args.think_ms,
        "next_ms": percentiles(out.next_ms),
        "submit_ms": percentiles(out.submit_ms),
        "submits_per_s": round(submits / wall, 2),
        "served_to_two": figures["served_to_two"],
        "annotated_twice": figures["annotated_twice"],
        "tasks_served": len(out.served),
        "served_to_two_and_annotated_twice": figures["served_to_two_and_annotated_twice"],
        "submits": submits,
        "annotations_stored": figures["annotations_stored"],
        "lost": figures["lost"],
        "errors": out.errors,
        "db_locked_replays": locked,
        "import_seconds": round(setup.import_seconds, 1),
        "cpu_pressure_pct": pressure["cpu"],
        "io_pressure_pct": pressure["io"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
