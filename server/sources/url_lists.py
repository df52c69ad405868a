"""URL lists (as img2dataset takes them): a CSV or parquet file with a column of image URLs.

The list is read when the source is created (so a bad file is refused at once, with the reason)
and kept in object storage; each run plans one ingest item per URL. The bytes are fetched by the
egress client only (`server.core.egress`): public http(s) addresses, capped in size and time.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from server.core.errors import BadRequest

MAX_URLS = 1_000_000
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class UrlList:
    format: str  # csv | parquet
    column: str
    urls: list[str]


def sniff_format(filename: str, data: bytes) -> str:
    if data[:4] == b"PAR1":
        return "parquet"
    if filename.lower().endswith((".csv", ".tsv", ".txt")) or not data[:4].startswith(b"PAR"):
        return "csv"
    raise BadRequest("a URL list is a CSV or a parquet file", code="url_list_format")


def parse(filename: str, data: bytes, column: str = "url") -> UrlList:
    """Every non-empty value of `column`, in file order; refuses a file without that column."""
    kind = sniff_format(filename, data)
    urls = list(_parquet(data, column) if kind == "parquet" else _csv(data, column))
    if not urls:
        raise BadRequest(f"the list has no URLs in column {column!r}", code="url_list_empty")
    if len(urls) > MAX_URLS:
        raise BadRequest(f"at most {MAX_URLS} URLs per list; split the file", code="url_list_too_long")
    return UrlList(format=kind, column=column, urls=urls)


def _csv(data: bytes, column: str) -> Iterator[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("the CSV file is not UTF-8", code="url_list_encoding") from exc
    dialect: type[csv.Dialect] = csv.excel
    # One column, or too little text to tell: commas.
    with contextlib.suppress(csv.Error):
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;")
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if reader.fieldnames is None or column not in reader.fieldnames:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise BadRequest(f"no column {column!r} in the CSV header (columns: {found})", code="url_list_column")
    for row in reader:
        value = (row.get(column) or "").strip()
        if value:
            yield value


def _parquet(data: bytes, column: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data), columns=[column])
    except KeyError as exc:
        raise BadRequest(f"no column {column!r} in the parquet file", code="url_list_column") from exc
    except Exception as exc:  # pyarrow raises several types for a damaged file
        if "No match for FieldRef" in str(exc):
            raise BadRequest(f"no column {column!r} in the parquet file", code="url_list_column") from exc
        raise BadRequest(f"the parquet file cannot be read: {exc}", code="url_list_format") from exc
    for value in table.column(column).to_pylist():
        if isinstance(value, str) and value.strip():
            yield value.strip()
