"""The export formats. A part writer turns one shard range of records into files; `finish`
writes what needs every part (merged parquet, JSONL, Label Studio tasks and config).

Files are byte-for-byte deterministic for a snapshot: tar members have a fixed mtime, owner
and order, so a resumed export reproduces the files a killed one had written.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from server.exports.destinations import Destination
from server.exports.labelstudio import labeling_config, tasks_from_records
from server.exports.records import (
    AttributesEncoder,
    ExportRecord,
    aa_text,
    attribute_ids,
    dumps,
    person_type,
)
from server.taxonomy.format import TaxonomySpec

FORMATS = ("webdataset", "cosmicman", "jsonl", "labelstudio")
WEBDATASET_MEMBERS = ("image", "txt", "json")

Files = dict[str, dict[str, Any]]


@dataclass
class PartContext:
    spec: TaxonomySpec
    destination: Destination
    snapshot: dict[str, Any]  # id, high-water marks, taxonomy: written into every sample
    mtime: int  # tar members' modification time: the snapshot's
    read_blob: Callable[[str], bytes]
    options: dict[str, Any] = field(default_factory=dict)


def shard_name(index: int) -> str:
    return f"{index:05d}"


def _dumps(document: Any) -> bytes:
    return dumps(document).encode()


def preload() -> None:
    """Import what writing a part would import lazily: pyarrow loads pandas (about half a
    CPU-second) the first time it is given Python lists. A process that forks part processes
    (a worker before its pool starts, `service.run_here`) calls this once, so that its children
    do not each pay it."""
    _parquet_bytes(pa.table({"key": ["preload"]}))


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _has_values(dest: Destination, name: str, column: str) -> bool:
    """Whether a parquet file's column holds a value: only that column is read."""
    with dest.fs.open(dest.path(name), "rb") as fh:
        parquet = pq.ParquetFile(fh)
        return bool(parquet.read(columns=[column]).column(0).null_count < parquet.metadata.num_rows)


class _Chunks:
    """A file-like sink that keeps what is written as chunks, taken as they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[bytes]:
        chunks, self.chunks = self.chunks, []
        return chunks


def _parquet_stream(schema: pa.Schema, tables: Iterable[pa.Table]) -> Iterator[bytes]:
    """One parquet file of the tables, a row group each, streamed: one table in memory at a
    time, where concatenating them held a whole project's rows (CosmicMan's aa_text is about
    a kilobyte a row)."""
    sink = _Chunks()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for table in tables:
            writer.write_table(table)
            yield from sink.take()
    yield from sink.take()


_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_NAME_BYTES = 100
_ZEROS = bytes(_BLOCK)


class TarBuilder:
    """An uncompressed USTAR archive of regular files, byte for byte what `tarfile` writes for
    members with this mtime, mode 0644 and owner 0:0 without names; built directly, since
    `tarfile` spends more per member than the whole rest of an export's sample."""

    def __init__(self, mtime: int) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0
        # The header fields but the name, size and checksum: mode, owner ids, mtime, and after the
        # checksum the regular-file type, USTAR magic, and empty link, owner, device and prefix.
        self._mtime_field = b"%011o\0" % mtime
        self._rest = tarfile.REGTYPE + b"\0" * 100 + b"ustar\x0000"
        self._rest += b"\0" * (64 + 16 + 155)  # owner names, device numbers, name prefix
        self._rest += b"\0" * (_BLOCK - 100 - 8 * 3 - 12 - 12 - 8 - len(self._rest))
        self._fixed = b"0000644\0" + b"0000000\0" * 2
        self._fixed_sum = sum(self._fixed) + sum(self._mtime_field) + 8 * ord(" ") + sum(self._rest)

    def add(self, name: str, data: bytes) -> int:
        """Adds a regular file; returns its header's offset in the archive."""
        encoded = name.encode()
        if len(encoded) > _NAME_BYTES:
            raise ValueError(f"member name longer than {_NAME_BYTES} bytes: {name!r}")
        size = len(data)
        size_field = b"%011o\0" % size
        # The checksum counts the checksum field as eight spaces: the fixed fields' sum is known.
        checksum = b"%06o\0 " % (self._fixed_sum + sum(encoded) + sum(size_field))
        header = b"".join(
            (
                encoded,
                b"\0" * (_NAME_BYTES - len(encoded)),
                self._fixed,
                size_field,
                self._mtime_field,
                checksum,
                self._rest,
            )
        )
        offset = self.offset
        padding = -size % _BLOCK
        self.chunks.append(header)
        self.chunks.append(data)
        if padding:
            self.chunks.append(_ZEROS[:padding])
        self.offset += _BLOCK + size + padding
        return offset

    def take(self) -> list[bytes]:
        """The chunks added since the last `take`, in order: a writer streams them out as it goes
        instead of holding the whole archive."""
        chunks, self.chunks = self.chunks, []
        return chunks

    def close(self) -> list[bytes]:
        """The chunks not yet taken, in order: two zero blocks end the archive, zeros pad it to
        whole records."""
        end = self.offset + 2 * _BLOCK
        self.chunks.append(b"\0" * (2 * _BLOCK + -end % _RECORD))
        return self.take()


# A part reads its images a few at a time, then writes their samples: the reads run back to back,
# while the kernel's structures for them are still in the CPU's caches. One read between each
# sample's hashing and encoding cost about twice as much (24 us an image against 12 in a loop of
# reads), and a shard's whole write took 10-20% more CPU. At most this many bytes of images are
# held at once (and one image more), or this many images.
READ_AHEAD_BYTES = 1 << 20
READ_AHEAD_AT_MOST = 32


def _read_ahead(
    records: Sequence[ExportRecord], read_blob: Callable[[str], bytes]
) -> Iterator[list[tuple[ExportRecord, bytes]]]:
    """The records with their images' bytes, in order, in batches (`READ_AHEAD_BYTES`)."""
    pending = iter(records)
    while True:
        batch: list[tuple[ExportRecord, bytes]] = []
        held = 0
        for record in pending:
            image = read_blob(record.storage_key)
            batch.append((record, image))
            held += len(image)
            if held >= READ_AHEAD_BYTES or len(batch) == READ_AHEAD_AT_MOST:
                break
        if not batch:
            return
        yield batch
        del batch, image  # the caller's now: freed once written, before the next batch is read


def write_webdataset_part(ctx: PartContext, index: int, records: Sequence[ExportRecord]) -> Files:
    """`{shard}.tar` (image, caption, attributes per sample) and `{shard}.parquet`, its index.
    The archive streams to the destination a few samples at a time: a part holds about one
    read-ahead (`READ_AHEAD_BYTES`) and one write (`destinations.GROUP_BYTES`) of it, whatever
    the shard's size."""
    tar = TarBuilder(ctx.mtime)
    offsets: list[int] = []
    sizes: list[int] = []

    def archive() -> Iterator[bytes]:
        add, take = tar.add, tar.take
        encode = AttributesEncoder(ctx.spec, ctx.snapshot).encode
        for batch in _read_ahead(records, ctx.read_blob):
            for record, image in batch:
                offsets.append(add(record.image_name, image))
                sizes.append(len(image))
                key = record.key
                add(f"{key}.txt", record.caption.encode())
                add(f"{key}.json", encode(record))
            del batch, image  # only their chunks hold the images now: freed once written
            yield from take()
        yield from tar.close()

    name = shard_name(index)
    files = {f"{name}.tar": ctx.destination.write(f"{name}.tar", archive())}
    index_rows = {
        "key": [r.key for r in records],
        "subject_id": [r.subject_id for r in records],
        "image_id": [r.row.image_id for r in records],
        "image": [r.image_name for r in records],
        "offset": offsets,
        "size": sizes,
        "caption": [r.caption for r in records],
        "person_type": [person_type(r) for r in records],
    }
    table = pa.table(index_rows, schema=_INDEX_SCHEMA)
    files[f"{name}.parquet"] = ctx.destination.write(f"{name}.parquet", _parquet_bytes(table))
    return files


_INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("subject_id", pa.int64()),
        ("image_id", pa.int64()),
        ("image", pa.string()),
        ("offset", pa.int64()),
        ("size", pa.int64()),
        ("caption", pa.string()),
        ("person_type", pa.string()),
    ]
)

COSMICMAN_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("segm_path", pa.string()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("aa_text", pa.string()),
        ("aa_ids", pa.string()),
        ("person_type", pa.string()),
        ("caption", pa.string()),
    ]
)


def _write_images(
    ctx: PartContext, records: Sequence[ExportRecord], *, masks: bool
) -> tuple[Files, dict[str, str]]:
    files: Files = {}
    segm: dict[str, str] = {}
    for record in records:
        name = f"images/{record.image_name}"
        files[name] = ctx.destination.write(name, ctx.read_blob(record.storage_key))
        if masks and record.parsing_mask_key:
            mask = f"segm/{record.key}.png"
            files[mask] = ctx.destination.write(mask, ctx.read_blob(record.parsing_mask_key))
            segm[record.key] = mask
    return files, segm


def write_cosmicman_part(ctx: PartContext, index: int, records: Sequence[ExportRecord]) -> Files:
    files, segm = _write_images(ctx, records, masks=True)
    ids = json.dumps(attribute_ids(ctx.spec))
    rows = {
        "path": [f"images/{r.image_name}" for r in records],
        "segm_path": [segm.get(r.key) for r in records],
        "height": [r.row.height for r in records],
        "width": [r.row.width for r in records],
        "aa_text": [aa_text(ctx.spec, r) for r in records],
        "aa_ids": [ids for _ in records],
        "person_type": [person_type(r) for r in records],
        "caption": [r.caption for r in records],
    }
    name = f"parts/{shard_name(index)}.parquet"
    files[name] = ctx.destination.write(name, _parquet_bytes(pa.table(rows, schema=COSMICMAN_SCHEMA)))
    return files


def write_jsonl_part(ctx: PartContext, index: int, records: Sequence[ExportRecord]) -> Files:
    encoder = AttributesEncoder(ctx.spec, ctx.snapshot)
    lines = b"".join(encoder.encode(r) + b"\n" for r in records)
    name = f"parts/{shard_name(index)}.jsonl"
    return {name: ctx.destination.write(name, lines)}


def write_labelstudio_part(ctx: PartContext, index: int, records: Sequence[ExportRecord]) -> Files:
    files, _ = _write_images(ctx, records, masks=False)
    prefix = str(ctx.options.get("image_url_prefix") or "images/")
    tasks = tasks_from_records(ctx.spec, records, prefix)
    name = f"parts/{shard_name(index)}.json"
    files[name] = ctx.destination.write(name, _dumps(tasks))
    return files


PART_WRITERS: dict[str, Callable[[PartContext, int, Sequence[ExportRecord]], Files]] = {
    "webdataset": write_webdataset_part,
    "cosmicman": write_cosmicman_part,
    "jsonl": write_jsonl_part,
    "labelstudio": write_labelstudio_part,
}


def finish(fmt: str, ctx: PartContext, parts: int, include_sensitive: bool) -> Files:
    """Files built from every part, once all parts are written."""
    names = [shard_name(i) for i in range(parts)]
    dest = ctx.destination
    if fmt == "cosmicman":
        parts_files = [f"parts/{n}.parquet" for n in names]
        schema = COSMICMAN_SCHEMA
        if not any(_has_values(dest, name, "segm_path") for name in parts_files):
            schema = schema.remove(schema.get_field_index("segm_path"))  # only when masks exist
        tables = (pq.read_table(io.BytesIO(dest.read(name)), columns=schema.names) for name in parts_files)
        return {"cosmicman.parquet": dest.write("cosmicman.parquet", _parquet_stream(schema, tables))}
    if fmt == "jsonl":
        # One part's lines in memory at a time, not the whole file.
        parts_lines = (dest.read(f"parts/{n}.jsonl") for n in names)
        return {"labels.jsonl": dest.write("labels.jsonl", parts_lines)}
    if fmt == "labelstudio":
        tasks = (json.loads(dest.read(f"parts/{n}.json")) for n in names)
        config = labeling_config(ctx.spec, include_sensitive=include_sensitive).encode()
        return {
            "tasks.json": dest.write("tasks.json", indented_list(tasks)),
            "labeling_config.xml": dest.write("labeling_config.xml", config),
        }
    return {}


def indented_list(items_in_parts: Iterable[list[Any]]) -> Iterator[bytes]:
    """`json.dumps(items, ensure_ascii=False, indent=1)` of the parts' items joined, UTF-8, one
    part at a time: Label Studio's tasks.json for a whole project is not held in memory. An
    item's lines inside the list are its own `indent=1` lines one space further in (a JSON
    string holds no raw newline)."""
    opened = False
    for items in items_in_parts:
        for item in items:
            text = json.dumps(item, ensure_ascii=False, indent=1).replace("\n", "\n ")
            yield ((",\n " if opened else "[\n ") + text).encode()
            opened = True
    yield b"\n]" if opened else b"[]"
