"""The real stack the browser tests drive (web/e2e): started by web/e2e/global-setup.ts.

A fresh data folder; the API (uvicorn, `server.main:create_app`) serving the built UI with jobs
run inline (AA_JOBS_EAGER), so an upload is analysed, pre-labelled and queued before the upload
request returns; an admin, three annotators and two projects of synthetic people uploaded through
the API. The first project's subjects get a human-parsing mask (the demo pipeline runs no parser):
a silhouette cut into ATR regions, stored as the parser's output would be.

Prints one line `AA_STACK {json}` when ready, serves until SIGTERM or SIGINT (or until its stdin
closes, so that a killed test runner never leaves it behind), then stops the API and deletes the
data folder.

    python -m tests.web.stack            # what the browser tests run
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"email": "admin@example.com", "password": "e2e admin password"}
PASSWORD = "e2e annotator password"
# Project "review": one annotator works through it with the keyboard (and offline).
# Project "pair": two annotators ask for work at the same time.
PROJECTS: dict[str, tuple[int, list[str]]] = {
    "review": (10, ["ann1@example.com"]),
    "pair": (6, ["ann2@example.com", "ann3@example.com"]),
}
# ATR ids (workers/inference/analyzers/masks.py): hair 2, face 11, upper clothes 4, pants 6,
# left shoe 9. Bands are shares of the silhouette's height.
MASK_BANDS = [(0.0, 0.13, 2), (0.13, 0.24, 11), (0.24, 0.55, 4), (0.55, 0.92, 6), (0.92, 1.01, 9)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AA_DATA_DIR=str(data_dir),
        AA_JOBS_EAGER="true",
        AA_ADMIN_EMAIL=ADMIN["email"],
        AA_ADMIN_PASSWORD=ADMIN["password"],
        AA_LOG_LEVEL="WARNING",
    )
    env.pop("AA_DATABASE_URL", None)
    env.pop("AA_BROKER_URL", None)
    return env


def _wait_healthy(base: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API exited with {server.returncode} before it was healthy")
        try:
            # 503 without a worker is expected here (jobs run inline): the database is what counts.
            if httpx.get(f"{base}/api/v1/health", timeout=2).json()["database"]["ok"]:
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not become healthy in time")


class _Client:
    """The admin's browser-like session: cookie plus the CSRF header."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", timeout=120)
        response = self.http.post("/auth/login", json=ADMIN)
        response.raise_for_status()
        self.http.headers["X-CSRF-Token"] = response.json()["csrf_token"]

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None


def _person_png(seed: int) -> bytes:
    from server.demo.synthetic import render_person

    image, _ = render_person(seed)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _parsing_mask(seed: int) -> bytes:
    """ATR ids over the person's silhouette, as a grayscale PNG of the image's size."""
    import numpy as np
    from PIL import Image

    from server.demo.synthetic import render_person_with_mask

    _, silhouette, _ = render_person_with_mask(seed)
    inside = np.asarray(silhouette) > 127
    rows = np.flatnonzero(inside.any(axis=1))
    ids = np.zeros(inside.shape, dtype=np.uint8)
    if rows.size:
        top, height = rows[0], rows[-1] - rows[0] + 1
        share = (np.arange(inside.shape[0]) - top) / height
        for start, end, atr in MASK_BANDS:
            band = (share >= start) & (share < end)
            ids[band[:, None] & inside] = atr
    buffer = io.BytesIO()
    Image.fromarray(ids, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _store_masks(project_id: int, seeds: dict[str, int]) -> int:
    """What a parser would have stored for each subject of the project (see prelabel.service)."""
    from sqlalchemy import select

    from server.core import runtime
    from server.orm import Image, Subject

    stored = 0
    with runtime.database().session_scope() as session:
        rows = session.execute(
            select(Subject, Image)
            .join(Image, Image.id == Subject.image_id)
            .where(Subject.project_id == project_id)
        )
        for subject, image in rows:
            seed = seeds.get(image.original_name)
            if seed is None:
                continue
            key = f"masks/e2e/{image.sha256}.png"
            runtime.storage().put(key, _parsing_mask(seed))
            subject.parsing_mask_key = key
            stored += 1
    return stored


def _seed(base: str) -> dict[str, Any]:
    admin = _Client(base)
    out: dict[str, Any] = {"projects": {}, "annotators": {}}
    seed = 1000
    for name, (people, emails) in PROJECTS.items():
        project = admin.call("POST", "/projects", 201, json={"name": f"E2E {name}", "slug": f"e2e-{name}"})
        for email in emails:
            if email not in out["annotators"]:
                admin.call("POST", "/users", 201, json={"email": email, "password": PASSWORD})
                out["annotators"][email] = PASSWORD
            admin.call(
                "POST", f"/projects/{project['id']}/members", 201, json={"email": email, "role": "annotator"}
            )
        names: dict[str, int] = {}
        files = []
        for _ in range(people):
            seed += 1
            filename = f"person-{seed}.png"
            names[filename] = seed
            files.append(("files", (filename, _person_png(seed), "image/png")))
        admin.call("POST", f"/projects/{project['id']}/uploads", 202, files=files)
        deadline = time.monotonic() + 120
        while True:
            stats = admin.call("GET", f"/projects/{project['id']}/assignments/stats", 200)
            if stats["queued"] >= len(files):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"project {name}: only {stats} after the upload")
            time.sleep(0.3)
        masks = _store_masks(project["id"], names) if name == "review" else 0
        out["projects"][name] = {"id": project["id"], "people": len(files), "masks": masks}
    out["board"] = _seed_board(base, admin, seed)
    out["xss"] = _seed_xss(base, admin, seed + 100)
    out["newuser"] = _seed_newuser(admin, seed + 200)
    return out


# Project "board": the data lead's dashboard (web/e2e/dashboard.spec.ts) with work to show: a
# lead, an annotator who reviewed some subjects, and a finished export.
LEAD = {"email": "lead@example.com", "password": "e2e lead password"}
BOARD_ANNOTATOR = "ann4@example.com"
BOARD_PEOPLE, BOARD_EVAL, BOARD_REVIEWED = 8, 3, 6


def _review(base: str, email: str, password: str, project_id: int, n: int) -> None:
    """Sign in as `email` and submit the next `n` assignments, accepting the pre-filled values."""
    with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as http:
        login = http.post("/auth/login", json={"email": email, "password": password})
        login.raise_for_status()
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        for i in range(n):
            assignment = http.post(f"/projects/{project_id}/assignments/next")
            if assignment.status_code != 200:
                raise SystemExit(f"board: no assignment for {email}: {assignment.status_code}")
            body = assignment.json()
            answers = [
                {"category_id": c["id"], "value": c["label"]["value"], "label_version": c["label"]["version"]}
                for c in body["categories"]
                if c["label"] is not None
            ]
            lead_time = 4000 + 1000 * i
            submit = {"client_id": f"e2e-board-{email}-{i}", "answers": answers, "lead_time_ms": lead_time}
            response = http.post(f"/assignments/{body['id']}/submit", json=submit)
            if response.status_code != 200:
                raise SystemExit(f"board: submit {response.status_code} {response.text[:300]}")


def _seed_board(base: str, admin: _Client, seed: int) -> dict[str, Any]:
    project = admin.call("POST", "/projects", 201, json={"name": "E2E board", "slug": "e2e-board"})
    pid = project["id"]
    settings = admin.call("GET", f"/projects/{pid}", 200)["settings"]
    settings["review"]["gold_share"] = 0
    admin.call("PUT", f"/projects/{pid}/settings", 200, json=settings)
    people = ((LEAD["email"], LEAD["password"], "lead"), (BOARD_ANNOTATOR, PASSWORD, "annotator"))
    for email, password, role in people:
        admin.call("POST", "/users", 201, json={"email": email, "password": password})
        admin.call("POST", f"/projects/{pid}/members", 201, json={"email": email, "role": role})
    files = [
        ("files", (f"board-{seed + i}.png", _person_png(seed + i), "image/png"))
        for i in range(1, 1 + BOARD_PEOPLE)
    ]
    admin.call("POST", f"/projects/{pid}/uploads", 202, files=files)
    # An evaluation set (served first), answered with the rest, so that a round has figures.
    admin.call("POST", f"/projects/{pid}/eval-set", 200, json={"size": BOARD_EVAL})
    _review(base, BOARD_ANNOTATOR, PASSWORD, pid, BOARD_REVIEWED)
    with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as http:
        login = http.post("/auth/login", json=LEAD)
        login.raise_for_status()
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        round_ = http.post(f"/projects/{pid}/rounds", json={"trigger": "manual"})
        if round_.status_code != 202:
            raise SystemExit(f"board: round {round_.status_code} {round_.text[:300]}")
        export = http.post(f"/projects/{pid}/exports", json={"format": "jsonl"})
        if export.status_code != 202:
            raise SystemExit(f"board: export {export.status_code} {export.text[:300]}")
    return {
        "id": pid,
        "people": BOARD_PEOPLE,
        "reviewed": BOARD_REVIEWED,
        "lead": LEAD,
        "annotator": BOARD_ANNOTATOR,
    }


# Project "xss" (web/e2e/xss.spec.ts): a script payload in every string a person can type, so
# that the spec can visit every page showing them and see none run. Each payload calls
# `__xss(<its id>)`, which the spec defines; CSP aside, running it is what the spec looks for.
XSS_LEAD = {"email": "xsslead@example.com", "password": "e2e xss lead password"}
XSS_ANNOTATOR = "ann5@example.com"
XSS_PAYLOADS = [
    "<script>MARK</script>",
    "<img src=x onerror=MARK>",
    "<svg onload=MARK>",
    "javascript:MARK",
    '"><img src=x onerror=MARK>',
    "'><svg/onload=MARK>",
    '{{constructor.constructor("MARK")()}}',
    "${MARK}",
    '<iframe srcdoc="<script>parent.MARK</script>"></iframe>',
    '<a href="javascript:MARK">click</a>',
    "</textarea></title><script>MARK</script>",
    "<details open ontoggle=MARK>",
    "\uff1cscript\uff1eMARK\uff1c/script\uff1e",
    "\u202e<img src=x onerror=MARK>\u200b",
    "<math><mtext><table><mglyph><style><img src=x onerror=MARK>",
    "<style>@import 'javascript:MARK'</style>",
    "data:text/html,<script>MARK</script>",
]


def xss_payload(index: int) -> str:
    return XSS_PAYLOADS[index % len(XSS_PAYLOADS)].replace(
        "MARK", f"__xss('x{index % len(XSS_PAYLOADS):02d}')"
    )


def _xss_taxonomy() -> str:
    """A valid taxonomy whose every free-text field is a payload (JSON is YAML)."""
    n = iter(range(1000))

    def value(key: str) -> dict[str, Any]:
        return {
            "key": key,
            "label": xss_payload(next(n)),
            "caption": xss_payload(next(n)),
            "prompts": [f"a photo of {key}"],
        }

    taxonomy = {
        "name": "xss-v1",
        "description": xss_payload(next(n)),
        "caption_groups": [
            {"key": "shot", "noun": "", "parsing_ids": [1, 2, 4]},
            {"key": "top", "noun": xss_payload(next(n)), "parsing_ids": [4]},
        ],
        "regions": [
            {
                "key": "shot",
                "name": xss_payload(next(n)),
                "parsing_ids": [1, 2, 4],
                "categories": [
                    {
                        "key": "type",
                        "question": xss_payload(next(n)),
                        "kind": "single",
                        "caption": {"group": "shot", "role": "phrase"},
                        "values": [value("full_body"), value("upper_body")],
                    }
                ],
            },
            {
                "key": "top",
                "name": xss_payload(next(n)),
                "parsing_ids": [4],
                "categories": [
                    {
                        "key": "color",
                        "question": xss_payload(next(n)),
                        "kind": "single",
                        "caption": {"group": "top", "role": "attribute"},
                        "values": [value("red"), value("blue"), value("green")],
                    },
                    {
                        "key": "pattern",
                        "question": xss_payload(next(n)),
                        "kind": "multi",
                        "caption": {"group": "top", "role": "attribute", "order": 1},
                        "values": [value("plain"), value("striped")],
                    },
                ],
            },
        ],
    }
    return json.dumps(taxonomy, ensure_ascii=False)


def _seed_xss(base: str, admin: _Client, seed: int) -> dict[str, Any]:
    name = f"E2E xss {xss_payload(1)}"
    project = admin.call(
        "POST", "/projects", 201, json={"name": name, "slug": "e2e-xss", "description": xss_payload(0)}
    )
    pid = project["id"]
    settings = admin.call("GET", f"/projects/{pid}", 200)["settings"]
    settings["review"]["gold_share"] = 0
    admin.call("PUT", f"/projects/{pid}/settings", 200, json=settings)
    admin.call("POST", f"/projects/{pid}/taxonomy", 201, json={"yaml": _xss_taxonomy()})
    people = (
        (XSS_LEAD["email"], XSS_LEAD["password"], "lead", xss_payload(2)),
        (XSS_ANNOTATOR, PASSWORD, "annotator", xss_payload(3)),
    )
    for email, password, role, display_name in people:
        admin.call(
            "POST", "/users", 201, json={"email": email, "password": password, "display_name": display_name}
        )
        admin.call("POST", f"/projects/{pid}/members", 201, json={"email": email, "role": role})
    # One more project per payload, named by it, so that the project list shows every one.
    names = []
    for i in range(len(XSS_PAYLOADS)):
        other = admin.call("POST", "/projects", 201, json={"name": xss_payload(i), "slug": f"e2e-xss-{i}"})
        admin.call(
            "POST", f"/projects/{other['id']}/members", 201, json={"email": XSS_LEAD["email"], "role": "lead"}
        )
        names.append(xss_payload(i))
    # File names: images (stored as their original names) and a file refused at ingest.
    files = [("files", (f"{xss_payload(i)}.png", _person_png(seed + i), "image/png")) for i in range(4)]
    files.append(("files", (f"{xss_payload(4)}.png", b"not an image at all", "image/png")))
    admin.call("POST", f"/projects/{pid}/uploads", 202, files=files)
    # A URL list named by payloads whose URLs the run refuses: rejections named by payloads.
    csv = "url\n" + "\n".join(f"javascript:__xss('u{i}')//{xss_payload(i)}" for i in range(5, 8)) + "\n"
    form = {"name": xss_payload(5), "licence": xss_payload(6), "consent": xss_payload(7)}
    source = admin.call(
        "POST",
        f"/projects/{pid}/sources/url-list",
        201,
        data=form,
        files={"file": (f"{xss_payload(8)}.csv", csv.encode(), "text/csv")},
    )
    admin.call("POST", f"/projects/{pid}/sources/{source['id']}/runs", 202)
    # Invite emails must be addresses (EmailStr): a payload is refused with 422, never stored.
    refused = admin.http.post(f"/projects/{pid}/invites", json={"email": f"{xss_payload(9)}@example.com"})
    # Webhooks: the UI shows none; a payload URL is refused or stored as an opaque string.
    hook = admin.http.post(
        f"/projects/{pid}/webhooks",
        json={"url": f"https://hooks.example.com/{xss_payload(4)}", "events": ["export.done"]},
    )
    _review(base, XSS_ANNOTATOR, PASSWORD, pid, 2)
    with httpx.Client(base_url=f"{base}/api/v1", timeout=120) as http:
        login = http.post("/auth/login", json=XSS_LEAD)
        login.raise_for_status()
        http.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        export = http.post(
            f"/projects/{pid}/exports", json={"format": "jsonl", "filters": {"source_ids": None}}
        )
        if export.status_code != 202:
            raise SystemExit(f"xss: export {export.status_code} {export.text[:300]}")
    return {
        "id": pid,
        "name": name,
        "lead": XSS_LEAD,
        "annotator": {"email": XSS_ANNOTATOR, "password": PASSWORD},
        "payloads": [xss_payload(i) for i in range(len(XSS_PAYLOADS))],
        "project_names": names,
        "invite_status": refused.status_code,
        "webhook_status": hook.status_code,
    }


# Project "newuser" (web/e2e/newuser.spec.ts): a lead and a queue, nobody to work it yet; the
# spec invites an annotator in the browser, who joins and reviews.
NEWUSER_LEAD = {"email": "newlead@example.com", "password": "e2e new lead password"}
NEWUSER_PEOPLE = 4


def _seed_newuser(admin: _Client, seed: int) -> dict[str, Any]:
    project = admin.call("POST", "/projects", 201, json={"name": "E2E new user", "slug": "e2e-newuser"})
    pid = project["id"]
    settings = admin.call("GET", f"/projects/{pid}", 200)["settings"]
    settings["review"]["gold_share"] = 0
    admin.call("PUT", f"/projects/{pid}/settings", 200, json=settings)
    admin.call("POST", "/users", 201, json={**NEWUSER_LEAD, "display_name": "New Lead"})
    admin.call("POST", f"/projects/{pid}/members", 201, json={"email": NEWUSER_LEAD["email"], "role": "lead"})
    files = [
        ("files", (f"newuser-{seed + i}.png", _person_png(seed + i), "image/png"))
        for i in range(NEWUSER_PEOPLE)
    ]
    admin.call("POST", f"/projects/{pid}/uploads", 202, files=files)
    return {"id": pid, "name": project["name"], "people": NEWUSER_PEOPLE, "lead": NEWUSER_LEAD}


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="aa-web-e2e-"))
    env = _env(data_dir)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AA_")})
    python = sys.executable
    subprocess.run(
        [python, "-m", "server.cli", "create-admin"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    factory = os.environ.get("AA_E2E_APP", "server.main:create_app")
    quiet = ["--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(
        [python, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port), *quiet],
        cwd=ROOT,
        env=env,
    )
    stop = threading.Event()

    def finish(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    try:
        _wait_healthy(base, server)
        page = httpx.get(base + "/projects/1/review", timeout=5)
        if page.status_code != 200 or 'id="root"' not in page.text:
            raise SystemExit(
                f"{factory} does not serve the web build at / (HTTP {page.status_code}): build it "
                "(make web) and call server.web.mount_web(app) in create_app()"
            )
        seeded = _seed(base)
        info = {"base_url": base, "admin": ADMIN, "data_dir": str(data_dir), **seeded}
        print("AA_STACK " + json.dumps(info), flush=True)

        def parent_gone() -> None:
            sys.stdin.read()  # the parent closing the pipe means it is gone: stop with it
            stop.set()

        threading.Thread(target=parent_gone, daemon=True).start()
        while not stop.wait(0.5):
            if server.poll() is not None:
                raise SystemExit(f"the API exited with {server.returncode}")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
