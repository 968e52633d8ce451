"""The seeded generator and the shipped sample follow docs/rules.md "Inputs"."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumption_pipeline.cli import synthetic

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

# The required columns of every catalog file (docs/rules.md, "Inputs").
PRICE_COLUMNS = ["usage_resource_id", "currency", "pricing_model", "unit_price", "effective_from"]
REQUIRED = {
    "accounts.csv": ["account_id", "account_name", "currency"],
    "usage_resources.csv": ["usage_resource_id", "name", "unit_of_measure"],
    "token_rates.csv": ["usage_resource_id", "tokens_per_unit", "effective_from"],
    "products.csv": ["product_id", "product_name"],
    "product_grants.csv": ["grant_id", "product_id", "usage_resource_id", "quantity", "renewal"],
    "assets.csv": ["asset_id", "account_id", "product_id", "quantity", "start_date"],
    "price_book.csv": PRICE_COLUMNS,
    "negotiated_rates.csv": ["account_id", *PRICE_COLUMNS],
}
EVENT_REQUIRED = ["event_id", "account_id", "usage_resource_id", "quantity", "occurred_at"]
DATE_COLUMNS = ["effective_from", "effective_to", "start_date", "end_date"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def header(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def read_events(directory: Path) -> list[dict]:
    """Every parseable event of a usage directory, as raw values, with its file; malformed rows
    (a CSV row with the wrong number of fields, a JSON line that does not parse) are skipped."""
    events = []
    for path in sorted((directory / "usage").iterdir()):
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
        elif path.suffix == ".csv":
            with open(path, newline="") as handle:
                reader = csv.reader(handle)
                names = next(reader)
                rows = [dict(zip(names, r, strict=True)) for r in reader if len(r) == len(names)]
        elif path.suffix == ".jsonl":
            rows = []
            for line in path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        else:
            continue
        events += [{**r, "file": path.name} for r in rows]
    return events


def instant(value) -> datetime:
    """occurred_at as an aware UTC datetime: ISO 8601 text (no offset = UTC) or a timestamp."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def decimals(quantity) -> int:
    """Decimal places of a quantity as written (a float is read back as its shortest repr)."""
    exponent = Decimal(repr(quantity) if isinstance(quantity, float) else str(quantity))
    return max(0, -exponent.normalize().as_tuple().exponent)


def usage_files(directory: Path) -> list[Path]:
    return sorted(p for p in (directory / "usage").iterdir() if p.suffix != ".md")


def count_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    lines = path.read_bytes().count(b"\n")
    return lines - 1 if path.suffix == ".csv" else lines


# --- the generator ---------------------------------------------------------------------------


def make(tmp_path: Path, name: str = "out", **kwargs) -> tuple[Path, dict]:
    options = {"accounts": 40, "events": 5_000, "files": 3, "chunk_rows": 700, **kwargs}
    out = tmp_path / name
    return out, synthetic.generate(out, **options)


@pytest.mark.parametrize("event_format", ["parquet", "csv", "jsonl"])
def test_generator_writes_every_required_file_and_column(tmp_path, event_format):
    out, counts = make(tmp_path, event_format=event_format)
    for name, columns in REQUIRED.items():
        assert set(columns) <= set(header(out / name)), name
        assert read_csv(out / name), f"{name} has no rows"
    files = usage_files(out)
    assert [p.name for p in files] == [f"events-0000{i}.{event_format}" for i in range(3)]
    for path in files:
        if event_format == "parquet":
            names = pq.read_schema(path).names
        elif event_format == "csv":
            names = header(path)
        else:  # the keys of the first line that parses (a line may be a malformed one)
            names = list(next(e for e in read_events(out) if e["file"] == path.name))
        assert set(EVENT_REQUIRED) <= set(names), path.name
    assert counts["accounts"] == 40 == len(read_csv(out / "accounts.csv"))


def test_generator_catalog_is_consistent(tmp_path):
    out, _ = make(tmp_path, accounts=300, events=100)
    accounts = {r["account_id"]: r for r in read_csv(out / "accounts.csv")}
    assets = read_csv(out / "assets.csv")
    resources = {r["usage_resource_id"]: r for r in read_csv(out / "usage_resources.csv")}
    products = {r["product_id"] for r in read_csv(out / "products.csv")}
    grants = read_csv(out / "product_grants.csv")
    prices = read_csv(out / "price_book.csv")
    assert {a["account_id"] for a in assets} == set(accounts)  # one or more assets each
    assert {a["product_id"] for a in assets} <= products
    assert any(a["start_date"][8:] != "01" for a in assets)  # some start mid-month
    assert any(a["end_date"] for a in assets)
    assert {r["category"] for r in resources.values()} == {"usage", "token"}
    assert resources["compute_hours"]["token_resource_id"] == "credits"
    assert resources["gb_stored"]["aggregation_method"] == "peak"
    assert {g["renewal"] for g in grants} >= {"none", "monthly", "quarterly"}
    assert {g["rollover"] for g in grants} >= {"full", "capped"}
    assert {g["binding"] for g in grants} >= {"asset", "account"}
    assert {g["product_id"] for g in grants} == products
    # A price in every currency used, for every chargeable resource billed (not converted).
    billed = {r for r, v in resources.items() if not v["token_resource_id"]}
    priced = {(p["usage_resource_id"], p["currency"]) for p in prices}
    for currency in {a["currency"] for a in accounts.values()}:
        assert {(r, currency) for r in billed} <= priced
    negotiated = read_csv(out / "negotiated_rates.csv")
    assert {bool(n["asset_id"]) for n in negotiated} == {True, False}
    for n in negotiated:
        assert accounts[n["account_id"]]["currency"] == n["currency"]
    for name in REQUIRED:
        for row in read_csv(out / name):
            for column in DATE_COLUMNS:
                assert not row.get(column) or date.fromisoformat(row[column])


@pytest.mark.parametrize("event_format", ["parquet", "csv", "jsonl"])
def test_same_seed_gives_identical_files(tmp_path, event_format):
    a, _ = make(tmp_path, "a", seed=7, event_format=event_format, bad_fraction=0.02)
    b, _ = make(tmp_path, "b", seed=7, event_format=event_format, bad_fraction=0.02)
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seed_gives_different_files(tmp_path):
    a, _ = make(tmp_path, "a", seed=1)
    b, _ = make(tmp_path, "b", seed=2)
    for name in ["accounts.csv", "assets.csv", "usage/events-00000.parquet"]:
        assert (a / name).read_bytes() != (b / name).read_bytes(), name


@pytest.mark.parametrize("event_format", ["parquet", "csv", "jsonl"])
@pytest.mark.parametrize("events, files", [(5_000, 3), (1_001, 4), (3, 5)])
def test_event_counts_match_the_request(tmp_path, event_format, events, files):
    out, counts = make(
        tmp_path, events=events, files=files, event_format=event_format, bad_fraction=0.01
    )
    assert sum(count_rows(p) for p in usage_files(out)) == events
    assert len(usage_files(out)) == files
    assert counts["events"] == events == counts["plain"] + counts["duplicates"] + counts["bad"]


def test_duplicates_are_exact_copies_spread_over_files(tmp_path):
    out, counts = make(tmp_path, events=20_000, duplicate_fraction=0.01, bad_fraction=0.005)
    events = read_events(out)
    by_id: dict[str, list[dict]] = {}
    for e in events:
        by_id.setdefault(e["event_id"], []).append(e)
    copies = [rows for rows in by_id.values() if len(rows) > 1]
    # Each duplicate and each conflict repeats the id of one earlier plain event.
    assert len(events) - len(by_id) == counts["duplicates"] + counts["bad_by_kind"]["conflict"]
    payload = [*EVENT_REQUIRED, "asset_id"]
    exact = [rows for rows in copies if all(r[k] == rows[0][k] for r in rows for k in payload)]
    assert len(exact) >= counts["duplicates"] * 0.9
    assert any(len({r["file"] for r in rows}) > 1 for rows in exact)


def test_bad_rows_are_the_requested_kinds(tmp_path):
    out, counts = make(tmp_path, events=20_000, bad_fraction=0.02, event_format="csv")
    kinds = counts["bad_by_kind"]
    assert set(kinds) == set(synthetic.BAD_KINDS) and all(kinds.values())
    events = read_events(out)
    accounts = {r["account_id"] for r in read_csv(out / "accounts.csv")}
    resources = {r["usage_resource_id"] for r in read_csv(out / "usage_resources.csv")}
    assert sum(e["account_id"] not in accounts for e in events) == kinds["unknown_account"]
    assert (
        sum(e["usage_resource_id"] not in resources for e in events)
        == kinds["unknown_usage_resource"]
    )
    assert sum(e["quantity"] == "n/a" for e in events) == kinds["invalid_quantity"]
    assert sum(e["quantity"].startswith("-") for e in events) == kinds["negative_quantity"]
    rows = sum(count_rows(p) for p in usage_files(out))
    assert rows - len(events) == kinds["malformed_row"]


@pytest.mark.parametrize("event_format", ["parquet", "csv", "jsonl"])
def test_quantities_have_at_most_six_decimals(tmp_path, event_format):
    out, counts = make(tmp_path, events=20_000, event_format=event_format, bad_fraction=0.01)
    places = Counter(decimals(e["quantity"]) for e in read_events(out) if e["quantity"] != "n/a")
    assert sum(n for d, n in places.items() if d > 6) == counts["bad_by_kind"]["too_many_decimals"]
    assert places[7] == counts["bad_by_kind"]["too_many_decimals"]
    assert set(places) <= {0, 1, 2, 3, 7}
    assert places[0] > 0.3 * sum(places.values())  # mostly integers or 2-3 decimals


@pytest.mark.parametrize("event_format", ["parquet", "csv", "jsonl"])
def test_usage_dates_fall_in_the_requested_periods(tmp_path, event_format):
    out, _ = make(tmp_path, periods=["2026-11", "2026-09"], event_format=event_format)
    months = Counter(instant(e["occurred_at"]).strftime("%Y-%m") for e in read_events(out))
    assert set(months) == {"2026-09", "2026-11"}
    assert min(months.values()) > 1_000  # spread over both, the October gap skipped


def test_generator_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = [str(out), "--accounts", "5", "--events", "1000", "--periods", "2026-10", "2026-11"]
    assert synthetic.main([*argv, "--seed", "3", "--format", "jsonl", "--files", "2"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["events"] == 1000 and counts["accounts"] == 5
    assert counts["periods"] == ["2026-10", "2026-11"]
    assert sorted(p.name for p in usage_files(out)) == ["events-00000.jsonl", "events-00001.jsonl"]


def test_generator_rejects_an_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="event_format"):
        synthetic.generate(tmp_path, event_format="xml")


# --- the shipped sample ----------------------------------------------------------------------


def test_sample_has_every_catalog_file_and_column():
    for name, columns in REQUIRED.items():
        assert (SAMPLE / name).is_file(), name
        missing = set(columns) - set(header(SAMPLE / name))
        assert not missing, f"{name} lacks {missing}"
    assert {p.suffix for p in usage_files(SAMPLE)} == {".csv", ".jsonl", ".parquet"}


def test_sample_acme_rows_match_the_worked_example():
    acme = [r for r in read_csv(SAMPLE / "accounts.csv") if r["account_id"] == "ACME"]
    assert [(r["currency"], r["drawdown_order"]) for r in acme] == [("USD", "")]
    assets = [r for r in read_csv(SAMPLE / "assets.csv") if r["account_id"] == "ACME"]
    assert [
        (a["asset_id"], a["product_id"], a["quantity"], a["start_date"], a["end_date"])
        for a in assets
    ] == [("A1", "PRO", "1", "2026-09-01", ""), ("A2", "PACK", "1", "2026-10-10", "")]
    grants = {
        g["product_id"]: g
        for g in read_csv(SAMPLE / "product_grants.csv")
        if g["product_id"] in {"PRO", "PACK"}
    }
    assert len(grants) == 2  # one grant each, nothing else for ACME
    pro, pack = grants["PRO"], grants["PACK"]
    assert (pro["usage_resource_id"], pro["quantity"], pro["renewal"]) == (
        "credits",
        "1000",
        "monthly",
    )
    assert (pro["rollover"], pro["rollover_cap"], pro["binding"]) == ("capped", "200", "account")
    assert pro["max_rollovers"] in ("", "1") and pro["priority"] in ("", "100")
    assert (pack["usage_resource_id"], pack["quantity"], pack["renewal"]) == (
        "credits",
        "500",
        "none",
    )
    assert (pack["validity_months"], pack["binding"]) == ("2", "account")
    assert pack["priority"] in ("", "100")
    resources = {r["usage_resource_id"]: r for r in read_csv(SAMPLE / "usage_resources.csv")}
    assert resources["compute_hours"]["token_resource_id"] == "credits"
    assert resources["credits"]["category"] == "token"
    assert resources["credits"]["overage_chargeable"] in ("", "true")
    rates = [
        r for r in read_csv(SAMPLE / "token_rates.csv") if r["usage_resource_id"] == "compute_hours"
    ]
    assert [(r["tokens_per_unit"], r["effective_from"], r["effective_to"]) for r in rates] == [
        ("10", "2026-01-01", "")
    ]
    credits_usd = [
        (p["pricing_model"], p["unit_price"], p["effective_from"], p["effective_to"])
        for p in read_csv(SAMPLE / "price_book.csv")
        if (p["usage_resource_id"], p["currency"]) == ("credits", "USD")
    ]
    assert credits_usd == [("per_unit", "0.02", "2026-01-01", "")]
    assert not [r for r in read_csv(SAMPLE / "negotiated_rates.csv") if r["account_id"] == "ACME"]
    acme_events = sorted(
        (
            instant(e["occurred_at"]),
            e["asset_id"],
            e["usage_resource_id"],
            Decimal(str(e["quantity"])),
        )
        for e in read_events(SAMPLE)
        if e["account_id"] == "ACME" or e.get("asset_id") in {"A1", "A2"}
    )
    noon = [datetime(2026, m, d, 12, tzinfo=UTC) for m, d in [(9, 15), (10, 5), (10, 20)]]
    assert acme_events == [
        (noon[0], "A1", "compute_hours", Decimal(80)),
        (noon[1], "A1", "compute_hours", Decimal(50)),
        (noon[2], "A1", "compute_hours", Decimal(130)),
    ]
    # The worked example: 800 credits in September (all granted), 500 + 1,300 in October, of which
    # 200 rollover + 1,000 October + 500 PACK are granted: 100 overage x $0.02 = $2.00.
    october = sum(q * 10 for at, _, _, q in acme_events if at.month == 10)
    assert october - (200 + 1000 + 500) == 100
    assert (october - 1700) * Decimal("0.02") == Decimal("2.00")


# Every special row of the sample and what ingest should do with it (data/sample/README.md).
SAMPLE_BAD = {
    "gw-90002": "conflict",
    "gw-90003": "invalid_quantity",
    "gw-90004": "unknown_account",
    "gw-90005": "asset_of_another_account",
    "gw-90006": "too_many_decimals",
    "gw-90007": "malformed_row",
    "gw-90008": "unknown_asset",
    "cs-90001": "negative_quantity",
    "cs-90002": "unknown_usage_resource",
    "cs-90003": "malformed_row",
}


def classify_sample_rows() -> tuple[dict[str, str], Counter]:
    """A small independent reading of the sample's rules: which rows are bad, and why."""
    accounts = {r["account_id"] for r in read_csv(SAMPLE / "accounts.csv")}
    resources = {r["usage_resource_id"] for r in read_csv(SAMPLE / "usage_resources.csv")}
    asset_owner = {r["asset_id"]: r["account_id"] for r in read_csv(SAMPLE / "assets.csv")}
    bad: dict[str, str] = {}
    for path in usage_files(SAMPLE):  # malformed rows, by id
        if path.suffix == ".csv":
            with open(path, newline="") as handle:
                rows = list(csv.reader(handle))
            bad |= {r[0]: "malformed_row" for r in rows[1:] if len(r) != len(rows[0])}
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    bad[re.search(r'"event_id": "([^"]+)"', line).group(1)] = "malformed_row"
    events = read_events(SAMPLE)
    payloads: dict[str, set] = {}
    for e in events:
        try:
            quantity = Decimal(str(e["quantity"]))
        except ArithmeticError:
            bad[e["event_id"]] = "invalid_quantity"
            continue
        asset = e.get("asset_id") or None
        key = (e["account_id"], asset, e["usage_resource_id"], quantity, instant(e["occurred_at"]))
        payloads.setdefault(e["event_id"], set()).add(key)
        if quantity < 0:
            bad[e["event_id"]] = "negative_quantity"
        elif decimals(e["quantity"]) > 6:
            bad[e["event_id"]] = "too_many_decimals"
        elif e["account_id"] not in accounts:
            bad[e["event_id"]] = "unknown_account"
        elif e["usage_resource_id"] not in resources:
            bad[e["event_id"]] = "unknown_usage_resource"
        elif asset and asset not in asset_owner:
            bad[e["event_id"]] = "unknown_asset"
        elif asset and asset_owner[asset] != e["account_id"]:
            bad[e["event_id"]] = "asset_of_another_account"
    bad |= {i: "conflict" for i, p in payloads.items() if len(p) > 1}
    good = [e for e in events if e["event_id"] not in bad]
    return bad, Counter(e["event_id"] for e in good)


def test_sample_bad_rows_are_exactly_the_documented_ones():
    bad, good = classify_sample_rows()
    assert bad == SAMPLE_BAD
    assert [i for i, n in good.items() if n > 1] == ["gw-90001"]  # the exact duplicate
    assert len(good) == 273
    readme = (SAMPLE / "README.md").read_text()
    for event_id in [*SAMPLE_BAD, "gw-90001"]:
        assert f"| {event_id} |" in readme


def test_sample_usage_falls_in_its_three_periods():
    bad, _ = classify_sample_rows()
    months = Counter(
        instant(e["occurred_at"]).strftime("%Y-%m")
        for e in read_events(SAMPLE)
        if e["event_id"] not in bad
    )
    # 80 + 105 + 88 distinct good events, the duplicate counted in both of its files.
    assert months == {"2026-09": 80, "2026-10": 106, "2026-11": 88}


def test_sample_parquet_is_reproduced_by_the_readme_script(tmp_path):
    readme = (SAMPLE / "README.md").read_text()
    script = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    target = tmp_path / "storage_snapshots.parquet"
    script = script.replace('"data/sample/usage/storage_snapshots.parquet"', repr(str(target)))
    exec(compile(script, "README.md", "exec"), {})
    shipped = pq.read_table(SAMPLE / "usage" / "storage_snapshots.parquet")
    assert pq.read_table(target).equals(shipped)
    assert shipped.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
