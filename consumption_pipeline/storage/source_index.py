"""The source index: what each event file holds (sources.FileEntry), kept beside the lake.

An event file is read whole once for its entry: its size, modification time and content digest,
and per batch its rows, its event-id hashes and the span of its dates. A period's ingest then
reads the entries instead of every file, finds copies and conflicts across all files through
their hashes, and reads whole only the batches that can hold its own dates (domain/ingest.py)::

    <lake>/_source_index/<sha256 of the file's path or URL>.parquet

holds one row per event (batch, id hash); the rest of the entry is in the file's metadata. An
entry is used while its file has the same size and modification time and the code that reads
events is the same; otherwise the file is indexed again. An entry is written beside its final
name and moved into place, so runs side by side read an old entry or a new one, never half.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumption_pipeline.domain import hashing, ingest
from consumption_pipeline.domain.ingest import PartFacts
from consumption_pipeline.storage import sources
from consumption_pipeline.storage.lake import Lake

_KEY = b"source_index"


class SourceIndex:
    """The entries of the event files a lake's periods were ingested from."""

    def __init__(self, lake: Lake) -> None:
        self._fs, self._folder = lake.aside("source_index")

    def entry(self, path: Path, root: Path, key: str) -> sources.FileEntry:
        """The entry of the file at `path` (under `root`), named `key` wherever it is read
        (storage/objects.py): the kept one while it still describes the file, else a new one."""
        where = f"{self._folder}/{hashlib.sha256(key.encode()).hexdigest()}.parquet"
        stat = os.stat(path)
        kept = self._read(where)
        if kept is not None and (kept.size, kept.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            return kept
        entry = sources.file_entry(path, root)
        self._write(where, path, entry)
        return entry

    def _read(self, where: str) -> sources.FileEntry | None:
        if self._fs.get_file_info(where).type == pafs.FileType.NotFound:
            return None
        table = pq.read_table(where, filesystem=self._fs)
        about = json.loads(table.schema.metadata[_KEY])
        if about["code"] != _code_version():
            return None
        hashes = table.column("id_hash").to_numpy()
        rows = [part[0] for part in about["parts"]]
        facts = [PartFacts(n, h, first, last, undated) for (n, first, last, undated), h
                 in zip(about["parts"], np.split(hashes, np.cumsum(rows)[:-1]), strict=True)]  # fmt: skip
        return sources.FileEntry(about["size"], about["mtime_ns"], about["digest"], facts)

    def _write(self, where: str, path: Path, entry: sources.FileEntry) -> None:
        about = {
            "path": str(path), "size": entry.size, "mtime_ns": entry.mtime_ns,
            "digest": entry.digest, "code": _code_version(),
            "parts": [[f.rows, f.first_us, f.last_us, f.undated] for f in entry.facts],
        }  # fmt: skip
        hashes = np.concatenate([f.id_hashes for f in entry.facts] or [np.empty(0, np.uint64)])
        table = pa.table({"id_hash": pa.array(hashes, pa.uint64())})
        table = table.replace_schema_metadata({_KEY: json.dumps(about).encode()})
        self._fs.create_dir(self._folder, recursive=True)
        partial = f"{self._folder}/.{uuid.uuid4().hex}.partial"
        with self._fs.open_output_stream(partial) as sink:
            pq.write_table(table, sink, compression="zstd")
        self._fs.move(partial, where)


@functools.cache
def _code_version() -> str:
    """A digest of the code that reads events and computes their facts: a change to it makes
    every entry stale."""
    code = b"".join(Path(m.__file__).read_bytes() for m in (ingest, hashing, sources))
    return hashlib.sha256(code).hexdigest()[:16]
