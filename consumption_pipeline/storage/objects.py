"""Where a source directory lies: a local folder, or a folder on an object store.

A source directory may be a URL that Arrow's file systems open (``s3://bucket/prefix``; the
standard AWS variables, AWS_ENDPOINT_URL included, configure it). Its files are read through a
local copy, kept in the cache folder ($CONSUMPTION_CACHE_DIR, else ~/.cache/consumption-pipeline)::

    <cache>/s3/bucket/prefix/usage/2026-10.parquet

so that every reader of event and catalog files (and every message naming a file) works on a
local file. A copy is fetched again when its object's size or modification time differs; a copy
whose object is gone is removed. Copies are written beside their final name and moved into place,
so processes side by side (and a run's Dask workers, each on its own machine) read an old copy or
a new one, never half of one.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

CACHE_ENV = "CONSUMPTION_CACHE_DIR"
_PARTIAL = ".partial"


def is_url(location: str) -> bool:
    return "://" in location


def folder(location: str) -> LocalFolder | ObjectFolder:
    """The source directory at `location` (a path or a URL)."""
    return ObjectFolder(location) if is_url(location) else LocalFolder(location)


def local_folder(location: str) -> Path:
    """The source directory at `location` as a local folder: the folder itself, or the local
    copy of the object-store folder, brought up to date."""
    return folder(location).copied()


def exists(location: str) -> bool:
    """Whether `location` is a folder (on the object store: holds at least one object)."""
    if not is_url(location):
        return Path(location).is_dir()
    fs, base = pafs.FileSystem.from_uri(location)
    return fs.get_file_info(base).type == pafs.FileType.Directory


def cache_root() -> Path:
    """The folder of local copies on this machine."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consumption-pipeline"


@dataclass(frozen=True)
class LocalFolder:
    """A source directory on this machine's (or a shared) file system."""

    location: str

    @property
    def root(self) -> Path:
        return Path(self.location)

    def copied(self) -> Path:
        return self.root

    def fetched(self, name: str) -> Path:
        """The file `name` (a path under the folder)."""
        return self.root / name

    def key(self, name: str) -> str:
        """What names the file `name` wherever it is read."""
        return str((self.root / name).resolve())


@dataclass(frozen=True)
class ObjectFolder:
    """A source directory on an object store, read through local copies."""

    location: str  # scheme://bucket/prefix

    @property
    def root(self) -> Path:
        """The local copy of the folder on this machine."""
        scheme, rest = self.location.split("://", 1)
        return cache_root() / scheme / rest.strip("/")

    def copied(self) -> Path:
        """The local copy of every object under the folder, brought up to date."""
        fs, base = self._fs()
        objects = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        kept = set()
        for info in objects:
            if info.type == pafs.FileType.File:
                name = info.path[len(base) :].lstrip("/")
                kept.add(self._copy_path(name))
                _copy(fs, info, self._copy_path(name))
        for path in self.root.rglob("*") if self.root.is_dir() else []:
            if path.is_file() and path not in kept and not path.name.endswith(_PARTIAL):
                path.unlink(missing_ok=True)
        return self.root

    def fetched(self, name: str) -> Path:
        """The local copy of the object `name` (a path under the folder), brought up to date."""
        fs, base = self._fs()
        info = fs.get_file_info(f"{base}/{name}")
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"{self.key(name)}: no such object")
        _copy(fs, info, self._copy_path(name))
        return self._copy_path(name)

    def key(self, name: str) -> str:
        return f"{self.location.rstrip('/')}/{name}"

    def _copy_path(self, name: str) -> Path:
        """Where the copy of the object `name` goes: inside the folder's copy, whatever the
        name holds (an object key may name '..' or start with '/')."""
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{self.key(name)}: an object name with an empty, '.' or '..' "
                             "part cannot be copied to a folder: rename the object")  # fmt: skip
        return self.root.joinpath(*parts)

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        fs, base = pafs.FileSystem.from_uri(self.location)
        return fs, base.rstrip("/")


def _copy(fs: pafs.FileSystem, info: pafs.FileInfo, target: Path) -> None:
    """Copy the object of `info` to `target` unless the copy there has its size and time."""
    if target.is_file():
        stat = target.stat()
        if (stat.st_size, stat.st_mtime_ns) == (info.size, info.mtime_ns):
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.{uuid.uuid4().hex}{_PARTIAL}"
    try:
        with fs.open_input_stream(info.path) as source, open(partial, "wb") as sink:
            while block := source.read(1 << 24):
                sink.write(block)
        os.utime(partial, ns=(info.mtime_ns, info.mtime_ns))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
