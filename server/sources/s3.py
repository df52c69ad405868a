"""S3-prefix sources: the images under `s3://bucket/prefix`, listed by a run's scan and read by
its batches, both outside any database transaction (a slow store must not hold the database).

A lead may name only a prefix under one the deployment allows (`AA_SOURCE_S3_PREFIXES`), as
folder sources are confined to their roots: the server's credentials can read more than any one
project should (the server's own storage bucket among them). The endpoint is the deployment's
(`AA_STORAGE__ENDPOINT_URL`), never the lead's: a user-chosen endpoint would be a request signed
with the server's credentials to an address of the user's choosing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from server.core.errors import BadRequest
from server.images.decoding import ImageRejected

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_KEY_LENGTH = 1000


@dataclass(frozen=True)
class S3Prefix:
    bucket: str
    prefix: str  # '' or ending in '/'

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def under(self, other: S3Prefix) -> bool:
        return self.bucket == other.bucket and self.prefix.startswith(other.prefix)


@dataclass(frozen=True)
class S3Object:
    relative_path: str  # the key below the source's prefix
    path: str  # bucket/key: what to read
    size: int
    etag: str


def parse(url: str) -> S3Prefix:
    """`s3://bucket/some/prefix` -> the bucket and the prefix as a folder ('some/prefix/')."""
    if not url.startswith("s3://"):
        raise BadRequest("an S3 source is named s3://bucket/prefix", code="s3_url")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    parts = [p for p in prefix.split("/") if p]
    if not bucket or any(p in (".", "..") for p in parts) or len(url) > MAX_KEY_LENGTH:
        raise BadRequest("an S3 source is named s3://bucket/prefix", code="s3_url")
    return S3Prefix(bucket, "".join(f"{p}/" for p in parts))


def confine(url: str, allowed: Sequence[str]) -> S3Prefix:
    target = parse(url)
    if not any(target.under(parse(root)) for root in allowed):
        raise BadRequest(
            "the prefix is not under an S3 prefix this deployment allows (AA_SOURCE_S3_PREFIXES)",
            code="s3_prefix_refused",
        )
    return target


def filesystem(endpoint_url: str) -> Any:
    import s3fs

    client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    # No listing cache: a watched prefix is listed again to find what is new.
    return s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True)


def list_images(fs: Any, source: S3Prefix) -> Iterator[S3Object]:
    """Every object under the prefix with an image suffix, in key order."""
    root = f"{source.bucket}/{source.prefix}"
    found: dict[str, dict[str, Any]] = fs.find(root, detail=True)
    for path in sorted(found):
        info = found[path]
        if info.get("type") != "file" or not path.lower().endswith(IMAGE_SUFFIXES):
            continue
        relative = path.removeprefix(root)
        yield S3Object(relative, path, int(info.get("size") or 0), str(info.get("ETag", "")).strip('"'))


def read(fs: Any, path: str, max_bytes: int) -> bytes:
    with fs.open(path, "rb") as fh:
        data: bytes = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageRejected("too_large", f"the object is over the {max_bytes}-byte limit")
    return data
