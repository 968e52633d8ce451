"""Fingerprints for auditors (item "lineage"): digests of files, of frames and of the code.

A frame's digest does not depend on row order: each row is hashed on canonical values (quantities
as integer micro-units, money to 6 decimals, dates and instants as UTC seconds, text as its UTF-8
bytes) and the sorted row hashes are digested with the column names. Row hashes are 64-bit
(splitmix64's mixer over 8-byte words, vectorized in numpy: ~1 s per 10M rows and column). So the same rows written twice, or read
back from the warehouse, give the same digest; any changed, added or removed row changes it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

import consumption_pipeline
from consumption_pipeline.domain.hashing import GOLDEN, NULL_HASH, mix, text_hashes
from consumption_pipeline.storage import sources
from consumption_pipeline.storage.tables import MONEY

DIGEST_CHARS = 32  # 128 bits: collisions are out of reach, and the UI stays readable
_MICRO = Decimal("0.000001")


def digest_bytes(*parts: bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(len(part).to_bytes(8, "big"))
        sha.update(part)
    return sha.hexdigest()[:DIGEST_CHARS]


def file_digest(path: Path) -> str:
    return sources.file_digest(path)  # digest_bytes of its content, read a block at a time


def files_digest(paths: Iterable[Path], root: Path) -> str:
    """One digest for a set of files: their paths relative to `root` and their contents."""
    return named_digest({Path(p).relative_to(root).as_posix(): file_digest(p) for p in paths})


def named_digest(digests: Mapping[str, str]) -> str:
    """One digest for a set of files from each one's digest, by name."""
    return digest_bytes(*sorted(f"{name}={digest}".encode() for name, digest in digests.items()))


def mapping_digest(values: Mapping[str, object]) -> str:
    return digest_bytes(json.dumps(values, sort_keys=True, default=str).encode())


def frame_digest(frame: pd.DataFrame, table: sa.Table) -> str:
    """Order-independent digest of the columns of `table` that `frame` carries (but `period`,
    which the warehouse fills in)."""
    return rows_digest(*row_hashes(frame, table))


def row_hashes(frame: pd.DataFrame, table: sa.Table) -> tuple[str, np.ndarray]:
    """The columns `frame_digest` reads (comma-separated) and a hash of each row of them: the
    hashes of a table's parts, taken together, give the digest of the whole (`rows_digest`)."""
    columns = [c for c in table.c if c.name in frame.columns and c.name != "period"]
    rows = np.full(len(frame), len(columns), dtype=np.uint64)
    for column in columns if len(frame) else []:
        rows = mix(rows * GOLDEN + _column_hashes(column, frame[column.name]))
    return ",".join(c.name for c in columns), rows


def rows_digest(columns: str, *parts: np.ndarray) -> str:
    """The digest of a table from its `row_hashes`, part by part: rows in no order."""
    every = np.concatenate(parts) if parts else np.empty(0, np.uint64)
    every.sort()  # in place: at 100M rows a sorted copy would be another 800 MB
    return digest_bytes(columns.encode(), every.tobytes())


_SAMPLE = 100_000  # rows that tell ids that repeat from ids that do not


def _column_hashes(column: sa.Column, values: pd.Series) -> np.ndarray:
    if isinstance(values.dtype, pd.CategoricalDtype) and isinstance(column.type, sa.String):
        # Text held once per category (ids of millions of events): each hashed once.
        distinct = _column_hashes(column, pd.Series(values.cat.categories, dtype="str"))
        return np.append(distinct, NULL_HASH)[values.cat.codes.to_numpy()]  # -1: missing
    canonical = _canonical(column, values.reset_index(drop=True))
    if canonical.dtype == "int64":
        return mix(canonical.to_numpy().view(np.uint64))
    text = pa.array(canonical, pa.large_string())
    if isinstance(text, pa.ChunkedArray):  # pandas may keep its text in several chunks
        text = text.combine_chunks()
    sample = text.slice(0, _SAMPLE)
    if len(pc.unique(sample)) > len(sample) // 2:  # mostly distinct (event ids): hash them all
        return text_hashes(text)
    encoded = pc.dictionary_encode(text)  # ids that repeat: hash each distinct one once
    indices = encoded.indices.fill_null(0).to_numpy()
    distinct = (
        text_hashes(encoded.dictionary) if len(encoded.dictionary) else np.zeros(1, np.uint64)
    )
    return np.where(encoded.indices.is_null().to_numpy(zero_copy_only=False), NULL_HASH,
                    distinct[indices])  # fmt: skip


def _canonical(column: sa.Column, values: pd.Series) -> pd.Series:
    """int64 for numbers, dates and instants (missing: int64's minimum), text otherwise."""
    missing = values.isna().to_numpy()
    if column.type is MONEY:
        text = [
            None if m else _money_text(v)
            for v, m in zip(values.astype("object"), missing, strict=True)
        ]
        return pd.Series(text, dtype="str")
    if isinstance(column.type, sa.DateTime):
        seconds = pd.to_datetime(values, utc=True).astype("datetime64[s, UTC]").astype("int64")
        return pd.Series(np.where(missing, np.iinfo("int64").min, seconds))
    if isinstance(column.type, sa.Date):
        seconds = pd.to_datetime(values).astype("datetime64[s]").astype("int64")
        return pd.Series(np.where(missing, np.iinfo("int64").min, seconds))
    if isinstance(column.type, sa.Numeric):
        micro = np.round(values.astype("float64").to_numpy() * 1_000_000)
        return pd.Series(np.where(missing, np.iinfo("int64").min, np.nan_to_num(micro))
                         .astype("int64"))  # fmt: skip
    if isinstance(column.type, sa.Integer | sa.Boolean):
        return pd.Series(np.where(missing, np.iinfo("int64").min,
                                  values.fillna(0).astype("int64").to_numpy()))  # fmt: skip
    return values.astype("str")


def _money_text(value: object) -> str:
    return str(Decimal(str(value)).quantize(_MICRO, rounding=ROUND_HALF_UP))


@functools.cache
def code_version() -> str:
    """The package version plus a digest of every source file of the package: two runs with the
    same code version ran the same code."""
    root = Path(consumption_pipeline.__file__).parent
    sources = sorted(root.rglob("*.py"))
    return f"{version('consumption-pipeline')}+{files_digest(sources, root)[:12]}"


# What computes and stores an asset's rows: the rules and the storage (not the lineage, checks or
# other plumbing, which change no row).
_COMPUTING = ("consumption_pipeline.domain", "consumption_pipeline.storage",
              "consumption_pipeline.defs.resources")  # fmt: skip


@functools.cache
def asset_code_version(module: str) -> str:
    """The code version of the assets that `module` defines: the package version plus a digest of
    `module` and of every module of the rules and the storage it imports, directly or through
    them. Dagster marks an asset whose code version changed since its last materialization."""
    root = Path(consumption_pipeline.__file__).parent.parent
    return f"{version('consumption-pipeline')}+{files_digest(code_files(module), root)[:12]}"


def code_files(module: str) -> list[Path]:
    """The source files behind `module`'s code version."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        path = _source_of(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        todo += [m for m in _imports(path) if m.startswith(_COMPUTING)]
    return sorted(seen.values())


def _source_of(module: str) -> Path | None:
    base = Path(consumption_pipeline.__file__).parent.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


# `from a.b import (c, d)` or `import a.b`, anywhere in a file (deferred imports count too).
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)|import[ \t]+([\w., \t]+))",
    re.MULTILINE,
)


@functools.cache
def _imports(path: Path) -> list[str]:
    """The absolute module names `path` imports (for `from a import b`: `a` and `a.b`)."""
    names = []
    for origin, imported, plain in _IMPORT.findall(path.read_text()):
        if plain:
            names += [n.split(" as ")[0].strip() for n in plain.split(",")]
        else:
            members = [m.split(" as ")[0].strip() for m in imported.strip("()").split(",")]
            names += [origin, *(f"{origin}.{m}" for m in members if m)]
    return names
