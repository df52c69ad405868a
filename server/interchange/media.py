"""Where a Label Studio task's image comes from: a data URI, or a file under the source roots.

Read: `data:<type>;base64,<bytes>`; Label Studio's local-storage URL `/data/local-files/?d=<path>`;
its upload URL `/data/upload/<project>/<file>` (read as `upload/<project>/<file>` under a root,
so a copy of Label Studio's media folder placed in a root resolves); `file://` URLs; and plain
paths, relative to a source root or absolute inside one. Paths obey the folder sources' rules
(server.sources.paths): no `..` component, and the file, symlinks resolved, lies inside a root.

Never fetched here: http(s), s3, gs and any other remote URL. Such a task is refused with
`remote_url_refused`; upload or place the images first, then import.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, unquote, urlsplit

from server.interchange.labelstudio import TaskError
from server.sources.paths import PathRefused, resolve_source_folder

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+/-]*)(?P<params>(?:;[\w.+=-]+)*?)(?P<b64>;base64)?,", re.I)


def read_image(reference: str, roots: Sequence[Path], max_bytes: int) -> tuple[str, bytes]:
    """(a name for the image, its bytes); TaskError with the reason otherwise."""
    if reference[:5].lower() == "data:":
        return "data-uri", _data_uri(reference, max_bytes)
    parts = urlsplit(reference)
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.netloc in ("", "localhost"):
        path = unquote(parts.path)
    elif scheme or parts.netloc:
        raise TaskError(
            "remote_url_refused",
            f"{scheme or 'network'} URLs are not fetched on import; upload the images or place them "
            "under a source root and reference them by path",
        )
    elif parts.path.rstrip("/") == "/data/local-files":
        found = parse_qs(parts.query).get("d")
        if not found:
            raise TaskError("invalid_image_reference", "a /data/local-files/ URL without ?d=<path>")
        path = found[0]
    elif parts.path.startswith("/data/upload/"):
        path = unquote(parts.path[len("/data/") :])
    else:
        path = unquote(reference)
    return PurePosixPath(path).name[-300:] or "image", _read_file(path, roots, max_bytes)


def _data_uri(reference: str, max_bytes: int) -> bytes:
    match = _DATA_URI.match(reference)
    if match is None or not match.group("b64"):
        raise TaskError("invalid_image_reference", "only base64 data URIs are read")
    encoded = reference[match.end() :]
    if len(encoded) * 3 // 4 > max_bytes + 3:
        raise TaskError("too_large", f"the embedded image is over the {max_bytes}-byte limit")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise TaskError("invalid_image_reference", "the data URI is not valid base64") from None
    if len(data) > max_bytes:
        raise TaskError("too_large", f"the embedded image is over the {max_bytes}-byte limit")
    return data


def _read_file(path: str, roots: Sequence[Path], max_bytes: int) -> bytes:
    if not path or "\x00" in path:
        raise TaskError("invalid_image_reference", "an empty image path")
    parent, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise TaskError("invalid_image_reference", f"{path!r} does not name a file")
    try:
        folder = resolve_source_folder(parent or ".", roots)
    except PathRefused as exc:
        raise TaskError(f"path_{exc.reason}", exc.detail) from None
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    resolved = Path(os.path.realpath(folder / name))
    if not any(resolved.is_relative_to(root) for root in real_roots):
        raise TaskError("path_symlink_escape", f"{path!r} leads through a symlink out of the roots")
    if not resolved.is_file():
        raise TaskError("path_not_found", f"{path!r} is not a file in a source root")
    if resolved.stat().st_size > max_bytes:
        raise TaskError("too_large", f"{path!r} is over the {max_bytes}-byte limit")
    return resolved.read_bytes()
