"""The billing outbox: a closed period's folder of liable summaries and its manifest, written
once (see the package docstring)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from consumption_pipeline.closing.dates import PeriodClosedError, label
from consumption_pipeline.domain import formatting
from consumption_pipeline.storage.settings import (
    PROJECT_ROOT,
)

OUTBOX_ENV = "CONSUMPTION_OUTBOX_DIR"


DEFAULT_OUTBOX = PROJECT_ROOT / "data" / "outbox"


LINES_CSV, LINES_JSON, MANIFEST = "liable_summaries.csv", "liable_summaries.json", "manifest.json"


COLUMNS = [
    "period", "account_id", "asset_id", "usage_resource_id", "consumption", "debited",
    "overage_quantity", "net_unit_rate", "amount", "currency", "status", "line_type",
    "restatement_id",
]  # fmt: skip


QUANTITIES = ["consumption", "debited", "overage_quantity"]


def outbox_dir() -> str:
    return os.environ.get(OUTBOX_ENV, str(DEFAULT_OUTBOX))


def outbox_folder(outbox: Path, period: str) -> Path:
    return Path(outbox) / label(period)


def read_manifest(outbox: Path, period: str) -> dict[str, Any]:
    path = outbox_folder(outbox, period) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PeriodClosedError(
            f"period {label(period)}: {path.parent} exists without a {MANIFEST}; it was not "
            "written by an export: move it away before closing the period"
        ) from None


def write_outbox(
    outbox: Path, period: str, lines: pd.DataFrame, closed_on: pd.Timestamp, grace_days: int
) -> dict[str, Any]:
    """Write the period's folder once (stage, then rename) and return its manifest. A folder
    already in place is kept if it holds exactly these lines, else it is an error."""
    rows = export_rows(lines)
    files = {LINES_CSV: _csv_bytes(rows), LINES_JSON: _json_bytes(rows)}
    manifest = {
        "period": label(period), "closed_on": f"{closed_on:%Y-%m-%d}", "grace_days": grace_days,
        "rows": len(rows), "totals": currency_totals(lines),
        "files": {name: {"rows": len(rows), "bytes": len(data), "sha256": _sha256(data)}
                  for name, data in files.items()},
        "checksum": _sha256(files[LINES_CSV]),
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    target = outbox_folder(outbox, period)
    if target.exists():
        return _already_exported(outbox, period, manifest["checksum"], rows)
    outbox = Path(outbox)
    outbox.mkdir(parents=True, exist_ok=True)
    for stale in outbox.glob(f".{label(period)}.*"):  # left by an attempt that crashed
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{label(period)}.", dir=outbox))
    files[MANIFEST] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    for name, data in files.items():  # the manifest last: a folder with one is complete
        _write_durably(staging / name, data)
    staging.chmod(0o755)
    _fsync_dir(staging)
    try:
        staging.rename(target)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        return _already_exported(outbox, period, manifest["checksum"], rows)  # another won
    _fsync_dir(outbox)
    return manifest


def _already_exported(
    outbox: Path, period: str, checksum: str, rows: pd.DataFrame
) -> dict[str, Any]:
    existing = read_manifest(outbox, period)
    if existing.get("checksum") != checksum and not _same_lines(outbox, period, rows):
        raise PeriodClosedError(
            f"period {label(period)} was already exported to {outbox_folder(outbox, period)} "
            "with other lines; exported files are never changed: late usage is restated in a "
            "later period"
        )
    return existing


def _same_lines(outbox: Path, period: str, rows: pd.DataFrame) -> bool:
    """Whether the folder's CSV holds these lines, number for number: a folder written by an
    earlier version (rates as '0.020000', not '0.02') holds the same lines in other text."""
    try:
        data = (outbox_folder(outbox, period) / LINES_CSV).read_bytes()
    except FileNotFoundError:
        return False
    found = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    wanted = [COLUMNS, *rows.fillna("").itertuples(index=False, name=None)]
    return len(found) == len(wanted) and all(
        len(a) == len(b) and all(_same_cell(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(found, wanted, strict=True)
    )


def _same_cell(found: str, wanted: str) -> bool:
    if found == wanted:
        return True
    try:
        return Decimal(found) == Decimal(wanted)
    except (ArithmeticError, ValueError):
        return False


def export_rows(lines: pd.DataFrame) -> pd.DataFrame:
    """The liable summaries as text (None where missing), in the export's column order, sorted
    so that the same lines always give the same bytes."""
    frame = lines.astype({"asset_id": "object", "restatement_id": "object"})
    frame = frame.assign(
        asset_id=frame["asset_id"].where(frame["asset_id"].notna(), None),
        restatement_id=frame["restatement_id"].where(frame["restatement_id"].notna(), None),
        line_type=frame["line_type"].fillna("usage"),
    )
    frame = frame.assign(
        _asset=frame["asset_id"].fillna(""), _restatement=frame["restatement_id"].fillna("")
    ).sort_values(["account_id", "_asset", "usage_resource_id", "line_type", "_restatement"])
    frame = frame.reset_index(drop=True)
    amounts = zip(frame["amount"], frame["currency"], strict=True)
    return pd.DataFrame({
        "period": pd.to_datetime(frame["period"]).dt.strftime("%Y-%m-%d"),
        **{c: frame[c] for c in ["account_id", "asset_id", "usage_resource_id"]},
        **{q: [formatting.plain_number(v) for v in frame[q].to_numpy()] for q in QUANTITIES},
        "net_unit_rate": [formatting.plain_price(r, c)
                          for r, c in zip(frame["net_unit_rate"], frame["currency"], strict=True)],
        "amount": [formatting.plain_money(_as_decimal(a), c) for a, c in amounts],
        **{c: frame[c] for c in ["currency", "status", "line_type", "restatement_id"]},
    }, dtype="object")[COLUMNS]  # fmt: skip


def currency_totals(lines: pd.DataFrame) -> dict[str, str]:
    """The sum of the (already rounded) line amounts per currency."""
    totals: dict[str, Decimal] = {}
    for currency, amount in zip(lines["currency"], lines["amount"], strict=True):
        totals[currency] = totals.get(currency, Decimal(0)) + _as_decimal(amount)
    return {c: formatting.plain_money(total, c) for c, total in sorted(totals.items())}


def _as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _csv_bytes(rows: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows.fillna("").itertuples(index=False, name=None))
    return buffer.getvalue().encode("utf-8")


def _json_bytes(rows: pd.DataFrame) -> bytes:
    """An array with one line per object (json's indenting encoder is ten times slower)."""
    objects = (
        json.dumps(dict(zip(COLUMNS, values, strict=True)), ensure_ascii=False)
        for values in rows.itertuples(index=False, name=None)
    )
    return ("[\n" + ",\n".join(objects) + "\n]\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_durably(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    path.chmod(0o444)  # exported files are never changed


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
