"""Stage 4 of docs/rules.md, rule by rule: opening, closing (expiry, rollover), draw order, bucket
order, binding, carried balances and the books (ledger and bucket balances).

Each rule is a small `Scenario` (its own account, assets, grants and usage). The scenarios of
this module run together, as different accounts of one catalog, from September to December
2026 starting from an empty warehouse: one pipeline run for the module keeps it fast and draws
every account in the same vectorized pass; `Run.view(name)` shows one scenario's rows with its
id prefix removed, as if it had run alone. Every period run is checked against the
conservation laws. The expected numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pandas as pd
import pytest

from consumption_pipeline.domain.buckets import create_buckets
from consumption_pipeline.domain.catalog import Catalog
from consumption_pipeline.domain.drawdown import Drawdown, draw_down
from consumption_pipeline.domain.rating import rate_usage
from consumption_pipeline.domain.summaries import summarize
from consumption_pipeline_tests.builders import catalog

# --- builders shared by the stage 3-5 tests ----------------------------------------------------

CREDITS = {"usage_resource_id": "credits", "name": "Credits", "unit_of_measure": "credit",
           "category": "token"}  # fmt: skip


def resource(rid: str, **extra: str) -> dict:
    return {"usage_resource_id": rid, "name": rid, "unit_of_measure": "unit", **extra}


def token_resource(rid: str, **extra: str) -> dict:
    """A usage resource converted into credits."""
    return resource(rid, token_resource_id="credits", **extra)


def token_rate(rid: str, tokens_per_unit: str = "1", effective_from: str = "2020-01-01",
               **extra: str) -> dict:  # fmt: skip
    return {"usage_resource_id": rid, "tokens_per_unit": tokens_per_unit,
            "effective_from": effective_from, **extra}  # fmt: skip


def grant(grant_id: str, product: str, quantity: str, renewal: str = "none", **extra: str) -> dict:
    return {"grant_id": grant_id, "product_id": product, "usage_resource_id": "credits",
            "quantity": quantity, "renewal": renewal, **extra}  # fmt: skip


def asset(asset_id: str, product: str, start: str, account: str = "ACME", **extra: str) -> dict:
    return {"asset_id": asset_id, "account_id": account, "product_id": product, "quantity": "1",
            "start_date": start, **extra}  # fmt: skip


def account(account_id: str = "ACME", currency: str = "USD", **extra: str) -> dict:
    return {"account_id": account_id, "account_name": account_id, "currency": currency, **extra}


def price_row(rid: str, unit_price: str, currency: str = "USD", model: str = "per_unit",
              effective_from: str = "2020-01-01", **extra: str) -> dict:  # fmt: skip
    return {"usage_resource_id": rid, "currency": currency, "pricing_model": model,
            "unit_price": unit_price, "effective_from": effective_from, **extra}  # fmt: skip


_ids = itertools.count(1)


def use(day: str, quantity: str, resource_id: str = "api_calls", asset_id: str | None = "A1",
        account_id: str = "ACME") -> dict:  # fmt: skip
    """One usage event at noon UTC of `day`."""
    return {"event_id": f"e{next(_ids)}", "account_id": account_id, "asset_id": asset_id,
            "usage_resource_id": resource_id, "quantity": quantity,
            "occurred_at": f"{day}T12:00:00Z"}  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """The catalog rows and usage of one rule, written as if alone (account ACME, asset A1...)."""

    name: str
    grants: list[dict] = field(default_factory=list)
    assets: list[dict] = field(default_factory=list)
    usage: list[dict] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=lambda: [account()])
    negotiated_rates: list[dict] = field(default_factory=list)

    def id(self, value: str | None) -> str | None:
        return f"{self.name}-{value}" if value else value

    def rows(self) -> dict[str, list[dict]]:
        """The rows with every account, asset, product and grant id prefixed by the name."""
        p = self.id
        products = {g["product_id"] for g in self.grants} | {a["product_id"] for a in self.assets}
        return {
            "accounts": [{**a, "account_id": p(a["account_id"])} for a in self.accounts],
            "products": [{"product_id": p(i), "product_name": i} for i in sorted(products)],
            "product_grants": [{**g, "grant_id": p(g["grant_id"]), "product_id": p(g["product_id"])}
                               for g in self.grants],
            "assets": [{**a, "asset_id": p(a["asset_id"]), "account_id": p(a["account_id"]),
                        "product_id": p(a["product_id"])} for a in self.assets],
            "negotiated_rates": [{**r, "account_id": p(r["account_id"]),
                                  "asset_id": p(r.get("asset_id"))} for r in self.negotiated_rates],
            "usage": [{**e, "event_id": p(e["event_id"]), "account_id": p(e["account_id"]),
                       "asset_id": p(e["asset_id"])} for e in self.usage],
        }  # fmt: skip


def build_catalog(scenarios: list[Scenario], resources: list[dict], token_rates=None,
                  price_book=None) -> Catalog:  # fmt: skip
    """One catalog for all scenarios. By default every converted resource turns 1:1 into
    credits and every resource costs 0.01 USD (so overage never blocks a test not about it)."""
    if token_rates is None:
        token_rates = [token_rate(r["usage_resource_id"]) for r in resources
                       if r.get("token_resource_id")]  # fmt: skip
    if price_book is None:
        price_book = [price_row(r["usage_resource_id"], "0.01") for r in resources]
    files: dict[str, list[dict]] = {}
    for s in scenarios:
        for name, rows in s.rows().items():
            files.setdefault(name, []).extend(rows)
    files.pop("usage", None)
    return catalog(usage_resources=resources, token_rates=token_rates, price_book=price_book,
                   **files)  # fmt: skip


def usage_events(scenarios: list[Scenario], start: pd.Timestamp) -> pd.DataFrame:
    """The accepted usage events of the period starting on `start`, as stage 1 hands them on."""
    rows = [e for s in scenarios for e in s.rows()["usage"]]
    columns = ["event_id", "account_id", "asset_id", "usage_resource_id", "quantity", "occurred_at"]
    events = pd.DataFrame(rows, columns=columns)
    events["asset_id"] = events["asset_id"].astype("str")
    events["quantity"] = events["quantity"].astype("float64")
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    events["usage_date"] = events["occurred_at"].dt.tz_localize(None).dt.normalize()
    return events[events["usage_date"].dt.to_period("M").eq(start.to_period("M"))]


ID_COLUMNS = {"account_id", "asset_id", "bucket_id", "grant_id", "parent_bucket_id", "summary_id",
              "related_bucket_id", "rate_asset_id"}  # fmt: skip


@dataclass
class Period:
    """The outputs of stages 2 to 5 for one period (or one scenario's share of them)."""

    buckets: pd.DataFrame  # grant buckets of stage 2 plus the rollover buckets of stage 4
    rated: pd.DataFrame
    usage: pd.DataFrame
    ledger: pd.DataFrame
    bucket_balances: pd.DataFrame
    rollover_buckets: pd.DataFrame
    ratable: pd.DataFrame
    liable: pd.DataFrame

    def view(self, name: str) -> Period:
        """One scenario's rows, its id prefix removed."""
        prefix = f"{name}-"

        def only(frame: pd.DataFrame) -> pd.DataFrame:
            rows = frame[frame["account_id"].str.startswith(prefix)].reset_index(drop=True)
            for column in ID_COLUMNS.intersection(rows.columns):
                rows[column] = rows[column].str.replace(prefix, "", regex=False)
            return rows

        return Period(*(only(getattr(self, f)) for f in self.__dataclass_fields__))

    @property
    def balances(self) -> pd.DataFrame:
        return self.bucket_balances.set_index("bucket_id")

    def entries(self, *columns: str) -> list[tuple]:
        """Ledger entries in sequence as tuples of the given columns (dates as YYYY-MM-DD)."""
        led = self.ledger.sort_values("sequence")
        rows = led[list(columns)].astype(object).where(led[list(columns)].notna(), None)
        if "entry_date" in columns:
            rows["entry_date"] = led["entry_date"].dt.strftime("%Y-%m-%d")
        return [tuple(r) for r in rows.itertuples(index=False)]

    def debits(self) -> list[tuple]:
        """(bucket_id, quantity) of the debit entries, in sequence."""
        entries = self.entries("bucket_id", "entry_type", "quantity")
        return [(b, q) for b, t, q in entries if t == "debit"]

    def bucket(self, bucket_id: str) -> pd.Series:
        return self.buckets.set_index("bucket_id").loc[bucket_id]

    def summary(self, **match: str | None) -> pd.Series:
        """The one usage summary matching column values (None matches a missing value)."""
        rows = self.usage
        for column, value in match.items():
            if value is None:
                rows = rows[rows[column].isna()]
            else:
                is_date = pd.api.types.is_datetime64_any_dtype(rows[column])
                rows = rows[rows[column].eq(pd.Timestamp(value) if is_date else value)]
        assert len(rows) == 1, rows
        return rows.iloc[0]

    def drawn(self, **match: str | None) -> list[float]:
        """[debited, overage] of the one usage summary matching."""
        return self.summary(**match)[["debited", "overage"]].tolist()


class Run(dict):
    """Periods keyed YYYY-MM."""

    def view(self, name: str) -> _ScenarioView:
        return _ScenarioView(self, name)


@dataclass(frozen=True)
class _ScenarioView:
    run: Run
    name: str

    def __getitem__(self, period: str) -> Period:
        return self.run[period].view(self.name)


def run_periods(cat: Catalog, scenarios: list[Scenario], first: str, last: str | None = None,
                as_of: str = "2030-01-01", grace_days: int = 3) -> Run:  # fmt: skip
    """Run consecutive periods `first`..`last` (YYYY-MM) from an empty warehouse through
    stages 2-5, carrying the open buckets with their closing balances as the Dagster layer does."""
    carried = pd.DataFrame()
    out = Run()
    for period in pd.period_range(first, last or first, freq="M"):
        start = period.to_timestamp()
        grant_buckets = create_buckets(cat, start)
        rated = rate_usage(usage_events(scenarios, start), cat, start)
        d = draw_down(rated, grant_buckets, carried, cat, start)
        s = summarize(d.usage_summaries, cat, start, pd.Timestamp(as_of), grace_days)
        assert_books_balance(d)
        all_buckets = pd.concat([grant_buckets, d.rollover_buckets], ignore_index=True)
        out[str(period)] = Period(all_buckets, rated, d.usage_summaries, d.entitlement_ledger,
                                  d.bucket_balances, d.rollover_buckets, s.ratable_summaries,
                                  s.liable_summaries)  # fmt: skip
        still_open = d.bucket_balances[d.bucket_balances["is_open"]][["bucket_id", "closing"]]
        carried = all_buckets.merge(still_open, on="bucket_id")
    return out


def micro(values) -> pd.Series:
    return (pd.Series(values, dtype="float64") * 1_000_000).round().astype("int64")


def assert_books_balance(d: Drawdown) -> None:
    """docs/rules.md's conservation laws of stage 4, in exact micro-units."""
    bal = d.bucket_balances
    f = {c: micro(bal[c]) for c in ["opening", "credited", "debited", "expired", "rolled_over",
                                    "closing"]}  # fmt: skip
    identity = f["opening"] + f["credited"] - f["debited"] - f["expired"] - f["rolled_over"]
    assert identity.tolist() == f["closing"].tolist()
    assert (f["closing"] >= 0).all()
    led = d.entitlement_ledger.sort_values("sequence")
    sign = led["entry_type"].map({"credit": 1, "debit": -1, "expired": -1, "rollover_out": -1})
    assert sign.notna().all(), led["entry_type"].unique()
    q, o, c = micro(led["quantity"]), micro(led["opening_balance"]), micro(led["closing_balance"])
    assert (o.to_numpy() + sign.to_numpy() * q.to_numpy() == c.to_numpy()).all()
    assert (q > 0).all() and (c >= 0).all()
    # Entry by entry, the ledger takes each bucket from its opening to its closing balance.
    by_bucket = led.sort_values(["bucket_id", "sequence"], kind="stable")
    same = by_bucket["bucket_id"].to_numpy()[1:] == by_bucket["bucket_id"].to_numpy()[:-1]
    assert (by_bucket["opening_balance"].to_numpy()[1:][same]
            == by_bucket["closing_balance"].to_numpy()[:-1][same]).all()  # fmt: skip
    first = by_bucket.drop_duplicates("bucket_id", keep="first").set_index("bucket_id")
    last = by_bucket.drop_duplicates("bucket_id", keep="last").set_index("bucket_id")
    b = bal.set_index("bucket_id")
    assert (micro(first["opening_balance"]) == micro(b.loc[first.index, "opening"])).all()
    assert (micro(last["closing_balance"]) == micro(b.loc[last.index, "closing"])).all()
    moved = b[["credited", "debited", "expired", "rolled_over"]]
    by_type = led.pivot_table("quantity", "bucket_id", "entry_type", aggfunc="sum", fill_value=0)
    by_type = by_type.rename(columns={"credit": "credited", "debit": "debited",
                                      "rollover_out": "rolled_over"})  # fmt: skip
    by_type = by_type.reindex(index=moved.index, columns=moved.columns, fill_value=0)
    assert (micro(by_type.to_numpy().ravel()) == micro(moved.to_numpy().ravel())).all()
    # Per summary: drawdown quantity = debited + overage, nothing negative, debits add up.
    u = d.usage_summaries
    assert (micro(u["drawdown_quantity"]) == micro(u["debited"]) + micro(u["overage"])).all()
    assert (micro(u["overage"]) >= 0).all() and (micro(u["debited"]) >= 0).all()
    debits = led[led["entry_type"].eq("debit")].groupby("summary_id")["quantity"].sum()
    assert micro(u["summary_id"].map(debits).fillna(0)).tolist() == micro(u["debited"]).tolist()


# --- the scenarios of this module --------------------------------------------------------------

RESOURCES = [
    CREDITS, token_resource("api_calls"), token_resource("a_calls"), token_resource("b_calls"),
    token_resource("a_monthly", aggregation_period="monthly"),
]  # fmt: skip
SCENARIOS: list[Scenario] = []


def scenario(name: str, grants=(), assets=(), usage=(), **extra) -> str:
    SCENARIOS.append(Scenario(name, list(grants), list(assets), list(usage), **extra))
    return name


@pytest.fixture(scope="module")
def run() -> Run:
    return run_periods(build_catalog(SCENARIOS, RESOURCES), SCENARIOS, "2026-09", "2026-12")


# --- opening buckets and the first period -----------------------------------------------------

FIRST = scenario(
    "FIRST",
    [grant("G-PRO", "PRO", "1000", "monthly", rollover="full"),
     grant("G-PACK", "PACK", "500", validity_months="3"),
     grant("G-Q", "Q", "1000", "quarterly")],
    [asset("A1", "PRO", "2026-08-01"), asset("A2", "PACK", "2026-08-10"),
     asset("A3", "Q", "2026-08-15")],
)  # fmt: skip


def test_first_period_without_history_opens_buckets_already_valid_with_their_granted_quantity(run):
    # September is the first period processed. Already valid on 1 September:
    #   A1's September bucket of the monthly PRO grant: 1,000;
    #   A2's PACK (500 once, 3 months from 10 Aug, ends 10 Nov): 500 (August's usage is unknown:
    #     the granted quantity is the opening credit);
    #   A3's quarterly 1,000 from 15 Aug: window 1 Aug..1 Nov = 31+30+31 = 92 days, covered
    #     15 Aug..1 Nov = 17+30+31 = 78 days: floor(1000 × 78 / 92) = floor(847.8) = 847.
    # A1's August bucket ends on 1 September: it would roll over (full), but with no history no
    # rollover is reconstructed: it is not opened and no rollover bucket appears.
    sep = run.view(FIRST)["2026-09"]
    assert sep.entries("entry_date", "bucket_id", "entry_type", "quantity") == [
        ("2026-09-01", "A1:G-PRO:2026-09-01", "credit", 1000.0),
        ("2026-09-01", "A2:G-PACK:2026-08-10", "credit", 500.0),
        ("2026-09-01", "A3:G-Q:2026-08-15", "credit", 847.0),
    ]
    assert sep.rollover_buckets.empty
    assert "A1:G-PRO:2026-08-01" not in sep.balances.index
    pack = sep.balances.loc["A2:G-PACK:2026-08-10"]
    assert pack[["opening", "credited", "closing"]].tolist() == [0, 500, 500]


OPENS = scenario(
    "OPENS", [grant("G", "PACK", "100")], [asset("A1", "PACK", "2026-10-10")],
    [use("2026-10-09", "60"), use("2026-10-10", "60")],
)  # fmt: skip


def test_a_bucket_starting_inside_the_period_opens_on_its_first_day(run):
    # PACK (100 once) from 10 October. 60 used on 9 October find no bucket: 60 overage.
    # On 10 October the bucket opens (credit 100) before the day's draw: 60 debited, 40 left.
    oct_ = run.view(OPENS)["2026-10"]
    assert oct_.drawn(window_date="2026-10-09") == [0, 60]
    assert oct_.drawn(window_date="2026-10-10") == [60, 0]
    assert oct_.entries("entry_date", "entry_type", "quantity", "opening_balance",
                        "closing_balance") == [
        ("2026-10-10", "credit", 100.0, 0.0, 100.0),
        ("2026-10-10", "debit", 60.0, 100.0, 40.0),
    ]  # fmt: skip


CARRY = scenario(
    "CARRY", [grant("G", "P", "1000")], [asset("A1", "P", "2026-09-01")],
    [use("2026-09-10", "300"), use("2026-10-10", "100")],
)  # fmt: skip
FLOWS = ["opening", "credited", "debited", "expired", "rolled_over", "closing"]


def test_balances_carry_from_one_period_to_the_next(run):
    # One-time 1,000, never expiring, from 1 September. September uses 300: closes at 700.
    # October opens at 700 (no new credit), uses 100: closes at 600; November opens at 600.
    periods = run.view(CARRY)
    b = "A1:G:2026-09-01"
    assert periods["2026-09"].balances.loc[b, FLOWS].tolist() == [0, 1000, 300, 0, 0, 700]
    assert periods["2026-10"].balances.loc[b, FLOWS].tolist() == [700, 0, 100, 0, 0, 600]
    assert periods["2026-11"].balances.loc[b, FLOWS].tolist() == [600, 0, 0, 0, 0, 600]
    assert periods["2026-10"].entries("entry_type", "opening_balance", "closing_balance") == [
        ("debit", 700.0, 600.0)
    ]


# --- closing buckets: expiry and rollover -------------------------------------------------------

EXPIRE = scenario(
    "EXPIRE", [grant("G", "P", "1000", "monthly")], [asset("A1", "P", "2026-09-01")],
    [use("2026-09-10", "300")],
)  # fmt: skip


def test_a_bucket_balance_expires_when_the_bucket_ends(run):
    # Monthly 1,000 without rollover from 1 September; September uses 300, 700 left.
    # 1 October: the October bucket opens (credit 1,000), then the September bucket ends and its
    # 700 expire. 1 November: the unused October 1,000 expire.
    periods = run.view(EXPIRE)
    assert periods["2026-10"].entries("entry_date", "bucket_id", "entry_type", "quantity",
                                      "opening_balance", "closing_balance") == [
        ("2026-10-01", "A1:G:2026-10-01", "credit", 1000.0, 0.0, 1000.0),
        ("2026-10-01", "A1:G:2026-09-01", "expired", 700.0, 700.0, 0.0),
    ]  # fmt: skip
    closed = periods["2026-10"].balances.loc["A1:G:2026-09-01"]
    assert closed[["opening", "expired", "closing", "is_open"]].tolist() == [700, 700, 0, False]
    assert periods["2026-11"].entries("bucket_id", "entry_type", "quantity")[1] == (
        "A1:G:2026-10-01", "expired", 1000.0,
    )  # fmt: skip
    assert periods["2026-10"].rollover_buckets.empty


HALF_OPEN = scenario(
    "HALFOPEN", [grant("G", "P", "100", "monthly", rollover="full")],
    [asset("A1", "P", "2026-09-01")], [use("2026-09-30", "60"), use("2026-10-01", "60")],
)  # fmt: skip


def test_a_bucket_no_longer_serves_usage_on_its_end_date_but_its_rollover_does(run):
    # Monthly 100, rollover full. 30 Sep: 60 from the September bucket [1 Sep, 1 Oct), 40 left.
    # 1 Oct: the October bucket opens, the September bucket closes (its window is half-open) and
    # its 40 roll over; then the day's 60 are drawn: the rollover's 40, then 20 of October.
    periods = run.view(HALF_OPEN)
    assert periods["2026-09"].debits() == [("A1:G:2026-09-01", 60.0)]
    assert periods["2026-10"].debits() == [
        ("A1:G:2026-09-01:rollover", 40.0), ("A1:G:2026-10-01", 20.0),
    ]  # fmt: skip


FULL = scenario(
    "FULL", [grant("G", "P", "1000", "monthly", rollover="full")],
    [asset("A1", "P", "2026-09-01")], [use("2026-09-10", "300"), use("2026-10-10", "1000")],
)  # fmt: skip


def test_full_rollover_moves_the_whole_balance_into_a_new_bucket_for_the_next_k_months(run):
    # Monthly 1,000, rollover full; September uses 300. 1 October: 700 move into a rollover bucket
    # valid [1 Oct, 1 Nov), generation 1, child of the September bucket.
    oct_ = run.view(FULL)["2026-10"]
    parent, child = "A1:G:2026-09-01", "A1:G:2026-09-01:rollover"
    assert oct_.entries("bucket_id", "entry_type", "quantity", "opening_balance",
                        "closing_balance", "related_bucket_id")[1:3] == [
        (parent, "rollover_out", 700.0, 700.0, 0.0, child),
        (child, "credit", 700.0, 0.0, 700.0, parent),
    ]  # fmt: skip
    rolled = oct_.bucket(child)
    assert rolled["granted"] == 700
    assert (rolled["valid_from"], rolled["valid_to"]) == (
        pd.Timestamp("2026-10-01"), pd.Timestamp("2026-11-01"),
    )  # fmt: skip
    assert (rolled["rollover_generation"], rolled["parent_bucket_id"]) == (1, parent)
    assert (rolled["origin"], rolled["binding"], rolled["asset_id"]) == ("rollover", "asset", "A1")


def test_a_rollover_bucket_is_a_bucket_of_the_next_period_with_its_own_balance(run):
    # October: 1,000 used on 10 October: rollover 700 first, then 300 of the October bucket.
    # 1 November: the rollover bucket (generation 1 of max 1) is empty: nothing expires; the
    # October bucket's 700 roll into [1 Nov, 1 Dec).
    periods = run.view(FULL)
    assert periods["2026-10"].debits() == [
        ("A1:G:2026-09-01:rollover", 700.0), ("A1:G:2026-10-01", 300.0),
    ]  # fmt: skip
    nov = periods["2026-11"]
    assert nov.balances.loc["A1:G:2026-09-01:rollover", FLOWS].tolist() == [0, 0, 0, 0, 0, 0]
    assert nov.entries("bucket_id", "entry_type", "quantity")[1:] == [
        ("A1:G:2026-10-01", "rollover_out", 700.0),
        ("A1:G:2026-10-01:rollover", "credit", 700.0),
    ]


CAP = scenario(
    "CAP", [grant("G", "P", "1000", "monthly", rollover="capped", rollover_cap="200")],
    [asset("A1", "P", "2026-09-01"), asset("A2", "P", "2026-09-01")],
    [use("2026-09-10", "300", asset_id="A1"), use("2026-09-10", "900", asset_id="A2")],
)  # fmt: skip


def test_capped_rollover_moves_at_most_the_cap_and_the_rest_expires(run):
    # Monthly 1,000 per asset, rollover capped at 200:
    #   A1 uses 300 in September: 700 left, 200 roll over, 500 expire;
    #   A2 uses 900: 100 left, min(100, 200) = 100 roll over, nothing expires.
    oct_ = run.view(CAP)["2026-10"]
    closing = oct_.ledger[oct_.ledger["entry_type"].isin(["rollover_out", "expired"])]
    closing = closing.sort_values(["bucket_id", "sequence"])
    columns = ["bucket_id", "entry_type", "quantity", "opening_balance", "closing_balance"]
    assert [tuple(r) for r in closing[columns].itertuples(index=False)] == [
        ("A1:G:2026-09-01", "rollover_out", 200.0, 700.0, 500.0),
        ("A1:G:2026-09-01", "expired", 500.0, 500.0, 0.0),
        ("A2:G:2026-09-01", "rollover_out", 100.0, 100.0, 0.0),
    ]
    assert oct_.bucket("A1:G:2026-09-01:rollover")["granted"] == 200
    assert oct_.bucket("A2:G:2026-09-01:rollover")["granted"] == 100


MAXROLL = scenario(
    "MAXROLL",
    [grant("G1", "P1", "1000", "monthly", rollover="full"),
     grant("G2", "P2", "1000", "monthly", rollover="full", max_rollovers="2")],
    [asset("A1", "P1", "2026-09-01"), asset("A2", "P2", "2026-09-01")],
)  # fmt: skip


def test_max_rollovers_limits_the_rollover_generation(run):
    # Monthly 1,000, rollover full, nothing used, from 1 September. G1 allows 1 rollover, G2 two.
    # 1 Oct: both September buckets (generation 0) roll 1,000 into generation-1 buckets.
    # 1 Nov: A1's generation-1 bucket: 1 < max 1 is false, its 1,000 expire;
    #        A2's generation-1 bucket: 1 < 2, rolls into a generation-2 bucket [1 Nov, 1 Dec).
    #        (each October bucket, generation 0, rolls too.)
    # 1 Dec: A2's generation-2 bucket: 2 < 2 is false, its 1,000 expire.
    periods = run.view(MAXROLL)

    def closed(period: str, bucket_id: str) -> list[tuple]:
        led = periods[period].ledger
        rows = led[led["bucket_id"].eq(bucket_id) & led["entry_type"].ne("credit")]
        return [tuple(r) for r in rows[["entry_type", "quantity"]].itertuples(index=False)]

    assert closed("2026-10", "A1:G1:2026-09-01") == [("rollover_out", 1000.0)]
    assert closed("2026-11", "A1:G1:2026-09-01:rollover") == [("expired", 1000.0)]
    assert closed("2026-11", "A2:G2:2026-09-01:rollover") == [("rollover_out", 1000.0)]
    second = periods["2026-11"].bucket("A2:G2:2026-09-01:rollover:rollover")
    assert (second["rollover_generation"], second["granted"]) == (2, 1000)
    assert (second["valid_from"], second["valid_to"]) == (
        pd.Timestamp("2026-11-01"), pd.Timestamp("2026-12-01"),
    )  # fmt: skip
    assert (
        "A1:G1:2026-09-01:rollover:rollover" not in periods["2026-11"].buckets["bucket_id"].values
    )
    assert closed("2026-12", "A2:G2:2026-09-01:rollover:rollover") == [("expired", 1000.0)]
    assert closed("2026-12", "A2:G2:2026-10-01:rollover") == [("rollover_out", 1000.0)]


EMPTY = scenario(
    "EMPTY", [grant("G", "P", "1000", "monthly", rollover="full")],
    [asset("A1", "P", "2026-09-01")], [use("2026-09-10", "1000")],
)  # fmt: skip


def test_no_rollover_when_the_balance_is_zero(run):
    # Monthly 1,000, rollover full; September uses all 1,000. 1 October: nothing to move and
    # nothing to expire: no rollover_out, no expired entry, no rollover bucket.
    oct_ = run.view(EMPTY)["2026-10"]
    assert oct_.entries("bucket_id", "entry_type") == [("A1:G:2026-10-01", "credit")]
    assert oct_.rollover_buckets.empty
    assert oct_.balances.loc["A1:G:2026-09-01", ["closing", "is_open"]].tolist() == [0, False]


ENDED = scenario(
    "ENDED", [grant("G", "P", "1000", "monthly", rollover="full")],
    [asset("A1", "P", "2026-09-01", end_date="2026-10-01")], [use("2026-09-10", "300")],
)  # fmt: skip


def test_no_rollover_when_the_asset_has_ended(run):
    # The asset ends on 1 October (exclusive), when its September bucket ends with 700 left:
    # the asset has ended, so the 700 expire instead of rolling over; no October bucket.
    oct_ = run.view(ENDED)["2026-10"]
    assert oct_.entries("bucket_id", "entry_type", "quantity") == [
        ("A1:G:2026-09-01", "expired", 700.0)
    ]
    assert oct_.rollover_buckets.empty


CUT = scenario(
    "CUT", [grant("G", "P", "1000", "monthly", rollover="full")],
    [asset("A1", "P", "2026-09-01", end_date="2026-10-15")], [use("2026-09-10", "300")],
)  # fmt: skip


def test_rollover_bucket_is_cut_at_the_asset_end(run):
    # The asset ends on 15 October. 1 Oct: the September bucket rolls 700 into a bucket that
    # would last to 1 Nov but is cut at 15 Oct. The October grant bucket [1 Oct, 15 Oct) is
    # prorated: floor(1000 × 14 / 31) = floor(451.6) = 451.
    # 15 Oct: both end; nothing rolls (the asset has ended; the rollover is generation 1 of 1):
    # 700 and 451 expire.
    oct_ = run.view(CUT)["2026-10"]
    child = oct_.bucket("A1:G:2026-09-01:rollover")
    assert (child["valid_from"], child["valid_to"], child["granted"]) == (
        pd.Timestamp("2026-10-01"), pd.Timestamp("2026-10-15"), 700,
    )  # fmt: skip
    expired = oct_.ledger[oct_.ledger["entry_type"].eq("expired")]
    assert expired["entry_date"].dt.strftime("%Y-%m-%d").unique().tolist() == ["2026-10-15"]
    assert sorted(zip(expired["bucket_id"], expired["quantity"], strict=True)) == [
        ("A1:G:2026-09-01:rollover", 700.0), ("A1:G:2026-10-01", 451.0),
    ]  # fmt: skip


ONCE = scenario(
    "ONCE", [grant("G", "PACK", "500", validity_months="2", rollover="full")],
    [asset("A1", "PACK", "2026-10-10")], [use("2026-10-20", "100")],
)  # fmt: skip


def test_one_time_grant_rolls_over_into_the_next_validity_months(run):
    # PACK: 500 once, valid 2 months, rollover full, from 10 October: [10 Oct, 10 Dec).
    # 100 used on 20 October. 10 December: 400 roll into a bucket [10 Dec 2026, 10 Feb 2027).
    dec = run.view(ONCE)["2026-12"]
    assert dec.entries("entry_date", "bucket_id", "entry_type", "quantity") == [
        ("2026-12-10", "A1:G:2026-10-10", "rollover_out", 400.0),
        ("2026-12-10", "A1:G:2026-10-10:rollover", "credit", 400.0),
    ]
    child = dec.bucket("A1:G:2026-10-10:rollover")
    assert (child["valid_from"], child["valid_to"]) == (
        pd.Timestamp("2026-12-10"), pd.Timestamp("2027-02-10"),
    )  # fmt: skip


QUARTER = scenario(
    "QUARTER", [grant("G", "P", "900", "quarterly", rollover="full")],
    [asset("A1", "P", "2026-09-01")], [use("2026-09-10", "100")],
)  # fmt: skip


def test_renewing_grant_rolls_over_into_the_next_k_months(run):
    # Quarterly 900, rollover full, from 1 September: [1 Sep, 1 Dec). 100 used in September.
    # 1 December: the next quarter's bucket opens (900) and 800 roll into [1 Dec, 1 Mar 2027).
    dec = run.view(QUARTER)["2026-12"]
    assert dec.entries("bucket_id", "entry_type", "quantity") == [
        ("A1:G:2026-12-01", "credit", 900.0),
        ("A1:G:2026-09-01", "rollover_out", 800.0),
        ("A1:G:2026-09-01:rollover", "credit", 800.0),
    ]
    child = dec.bucket("A1:G:2026-09-01:rollover")
    assert (child["valid_from"], child["valid_to"]) == (
        pd.Timestamp("2026-12-01"), pd.Timestamp("2027-03-01"),
    )  # fmt: skip


# --- binding ---------------------------------------------------------------------------------


def binding_scenario(name: str, binding: str) -> str:
    # A1 holds a bucket of 200; A2 (same account) and BETA's B1 hold none. On 5 October
    # 50 each are used by A1, by A2, by ACME without an asset, and by BETA's B1.
    return scenario(
        name, [grant("G", "P", "200", binding=binding)],
        [asset("A1", "P", "2026-10-01"), asset("A2", "NONE", "2026-10-01"),
         asset("B1", "NONE", "2026-10-01", account="BETA")],
        [*(use("2026-10-05", "50", asset_id=a) for a in ["A1", "A2", None]),
         use("2026-10-05", "50", asset_id="B1", account_id="BETA")],
        accounts=[account("ACME"), account("BETA")],
    )  # fmt: skip


ASSET_BOUND = binding_scenario("ASSETBOUND", "asset")
ACCOUNT_BOUND = binding_scenario("ACCOUNTBOUND", "account")


def test_asset_bound_bucket_serves_only_its_asset(run):
    # Only A1's 50 is drawn (200 → 150); A2, the untagged usage and BETA are 50 overage each.
    oct_ = run.view(ASSET_BOUND)["2026-10"]
    assert oct_.drawn(asset_id="A1") == [50, 0]
    assert oct_.drawn(asset_id="A2") == [0, 50]
    assert oct_.drawn(account_id="ACME", asset_id=None) == [0, 50]
    assert oct_.drawn(account_id="BETA") == [0, 50]
    assert oct_.balances.loc["A1:G:2026-10-01", "closing"] == 150


def test_account_bound_bucket_serves_any_usage_of_its_account(run):
    # The pooled wallet serves A1, A2 and the untagged usage: 3 × 50 = 150 drawn, 50 left.
    # BETA's usage belongs to another account: 50 overage.
    oct_ = run.view(ACCOUNT_BOUND)["2026-10"]
    for asset_id in ["A1", "A2", None]:
        assert oct_.drawn(account_id="ACME", asset_id=asset_id) == [50, 0]
    assert oct_.drawn(account_id="BETA") == [0, 50]
    assert oct_.balances.loc["A1:G:2026-10-01", "closing"] == 50


# --- bucket order ----------------------------------------------------------------------------

PRIORITY = scenario(
    "PRIORITY",
    [grant("LATE", "P", "100", priority="10"), grant("SOON", "P", "100", "monthly")],
    [asset("A1", "P", "2026-10-01")], [use("2026-10-05", "150")],
)  # fmt: skip


def test_lower_priority_number_is_drawn_first(run):
    # LATE: 100 never expiring, priority 10; SOON: 100 ending 1 Nov, priority 100 (default).
    # 150 used on 5 October: priority first, LATE gives 100 although it expires last; SOON 50.
    assert run.view(PRIORITY)["2026-10"].debits() == [
        ("A1:LATE:2026-10-01", 100.0), ("A1:SOON:2026-10-01", 50.0),
    ]  # fmt: skip


EXPIRING = scenario(
    "EXPIRING",
    [grant("NEVER", "P", "100"), grant("TWO", "P", "100", validity_months="2"),
     grant("ONE", "P", "100", validity_months="1")],
    [asset("A1", "P", "2026-10-01")], [use("2026-10-05", "250")],
)  # fmt: skip


def test_expiring_first_draws_the_bucket_that_ends_soonest_and_never_expiring_last(run):
    # Three one-time 100s from 1 October: NEVER (no validity), TWO (ends 1 Dec), ONE (ends 1 Nov).
    # 250 used, default order expiring_first: ONE 100, TWO 100, NEVER 50.
    assert run.view(EXPIRING)["2026-10"].debits() == [
        ("A1:ONE:2026-10-01", 100.0), ("A1:TWO:2026-10-01", 100.0), ("A1:NEVER:2026-10-01", 50.0),
    ]  # fmt: skip


def order_scenario(name: str, account_order: str, asset_order: str | None = None) -> str:
    # Account-bound 100s, never expiring: from A1 (granted 1 Sep) and A2 (granted 20 Sep).
    # 150 used on 5 October by A3, which holds no bucket (its drawdown order may be set).
    a3 = asset(
        "A3", "NONE", "2026-09-01", **({"drawdown_order": asset_order} if asset_order else {})
    )
    return scenario(
        name, [grant("G", "P", "100", binding="account")],
        [asset("A1", "P", "2026-09-01"), asset("A2", "P", "2026-09-20"), a3],
        [use("2026-10-05", "150", asset_id="A3")],
        accounts=[account(drawdown_order=account_order)],
    )  # fmt: skip


GRANTED_FIRST = order_scenario("GRANTEDFIRST", "granted_first")
GRANTED_LAST = order_scenario("GRANTEDLAST", "granted_last")
ASSET_ORDER = order_scenario("ASSETORDER", "granted_first", asset_order="granted_last")


def test_granted_first_draws_the_earliest_start_first(run):
    # A1's bucket (1 Sep) gives 100, A2's (20 Sep) 50.
    assert run.view(GRANTED_FIRST)["2026-10"].debits() == [
        ("A1:G:2026-09-01", 100.0), ("A2:G:2026-09-20", 50.0),
    ]  # fmt: skip


def test_granted_last_draws_the_latest_start_first(run):
    # A2's bucket (20 Sep) gives 100, A1's (1 Sep) 50.
    assert run.view(GRANTED_LAST)["2026-10"].debits() == [
        ("A2:G:2026-09-20", 100.0), ("A1:G:2026-09-01", 50.0),
    ]  # fmt: skip


def test_the_asset_drawdown_order_overrides_the_account_order(run):
    # The account says granted_first, the using asset A3 says granted_last: A2 first.
    assert run.view(ASSET_ORDER)["2026-10"].debits() == [
        ("A2:G:2026-09-20", 100.0), ("A1:G:2026-09-01", 50.0),
    ]  # fmt: skip


ROLLOVER_FIRST = [
    scenario(
        f"ROLLFIRST{i}", [grant("G", "P", "1000", "monthly", rollover="full")],
        [asset("A1", "P", "2026-09-01", drawdown_order=order)],
        [use("2026-09-10", "800"), use("2026-10-05", "250")],
    )
    for i, order in enumerate(["expiring_first", "granted_first", "granted_last"])
]  # fmt: skip


def test_rollover_buckets_are_drawn_before_fresh_ones(run):
    # Monthly 1,000, rollover full. September uses 800: 200 roll over on 1 October into
    # [1 Oct, 1 Nov), the window of the October bucket: tied on priority, start and end whatever
    # the drawdown order. 250 used on 5 October: the rollover's 200 first, then 50 of October.
    for name in ROLLOVER_FIRST:
        assert run.view(name)["2026-10"].debits() == [
            ("A1:G:2026-09-01:rollover", 200.0), ("A1:G:2026-10-01", 50.0),
        ]  # fmt: skip


TIES = scenario(
    "TIES", [grant("GB", "P", "100"), grant("GA", "P", "100")], [asset("A1", "P", "2026-10-01")],
    [use("2026-10-05", "150")],
)  # fmt: skip


def test_bucket_id_breaks_the_remaining_ties(run):
    # GB and GA: identical one-time 100s of the same asset. 150 used: A1:GA (smaller id) gives
    # 100, A1:GB 50, whatever the order of the catalog file.
    assert run.view(TIES)["2026-10"].debits() == [
        ("A1:GA:2026-10-01", 100.0), ("A1:GB:2026-10-01", 50.0),
    ]  # fmt: skip


NEGATIVE = scenario(
    "NEGATIVE", [grant("G", "P", "100")], [asset("A1", "P", "2026-10-01")],
    [use("2026-10-05", "70", "a_calls"), use("2026-10-05", "70", "b_calls"),
     use("2026-10-06", "70", "a_calls")],
)  # fmt: skip


def test_a_bucket_balance_never_goes_below_zero(run):
    # One bucket of 100; 70 used on 5 October by a_calls and by b_calls, 70 more on 6 October:
    # a 70, b 30 of 70 (bucket at 0), then 0 of 70: overage 40 + 70 = 110, closing 0.
    oct_ = run.view(NEGATIVE)["2026-10"]
    assert oct_.drawn(usage_resource_id="a_calls", window_date="2026-10-05") == [70, 0]
    assert oct_.drawn(usage_resource_id="b_calls", window_date="2026-10-05") == [30, 40]
    assert oct_.drawn(usage_resource_id="a_calls", window_date="2026-10-06") == [0, 70]
    assert oct_.balances.loc["A1:G:2026-10-01", "closing"] == 0
    assert (oct_.ledger["closing_balance"] >= 0).all()


# --- draw order within a day -----------------------------------------------------------------


def draw_order_scenario(name: str, *usage: dict) -> str:
    # One account-bound bucket of 100 credits, held by A1; A2 holds none.
    return scenario(
        name, [grant("G", "P", "100", binding="account")],
        [asset("A1", "P", "2026-10-01"), asset("A2", "NONE", "2026-10-01")], usage,
    )  # fmt: skip


DAILY_FIRST = draw_order_scenario(
    "DAILYFIRST",
    use("2026-10-31", "80", "b_calls", asset_id=None),
    use("2026-10-10", "50", "a_monthly"),
)


def test_daily_windows_draw_before_monthly_ones(run):
    # On 31 October: b_calls (daily, no asset) 80; a_monthly (used 10 October by A1) 50, whose
    # window is dated 31 October. The daily one goes first although the monthly one has an asset
    # and a smaller resource id: daily 80 drawn; monthly 20 drawn, 30 overage.
    oct_ = run.view(DAILY_FIRST)["2026-10"]
    assert oct_.drawn(usage_resource_id="b_calls") == [80, 0]
    assert oct_.drawn(usage_resource_id="a_monthly") == [20, 30]


WITH_ASSET_FIRST = draw_order_scenario(
    "WITHASSET",
    use("2026-10-05", "80", "a_calls", asset_id=None),
    use("2026-10-05", "50", "b_calls", "A2"),
)


def test_summaries_with_an_asset_draw_before_those_without(run):
    # 5 October: untagged a_calls 80, A2's b_calls 50: A2 first (50), then untagged 50 of 80.
    oct_ = run.view(WITH_ASSET_FIRST)["2026-10"]
    assert oct_.drawn(asset_id="A2") == [50, 0]
    assert oct_.drawn(asset_id=None) == [50, 30]


ASSET_ID_ORDER = draw_order_scenario(
    "ASSETID", use("2026-10-05", "80", "a_calls", "A2"), use("2026-10-05", "50", "b_calls", "A1")
)


def test_summaries_draw_in_asset_id_order(run):
    # 5 October: A2's a_calls 80, A1's b_calls 50: A1 first (50), then A2 50 of 80.
    oct_ = run.view(ASSET_ID_ORDER)["2026-10"]
    assert oct_.drawn(asset_id="A1") == [50, 0]
    assert oct_.drawn(asset_id="A2") == [50, 30]


RESOURCE_ORDER = draw_order_scenario(
    "RESOURCEID", use("2026-10-05", "80", "b_calls"), use("2026-10-05", "50", "a_calls")
)


def test_two_resources_converted_into_the_same_token_compete_in_resource_id_order(run):
    # 5 October, both A1, both converted into credits: b_calls 80, a_calls 50.
    # a_calls first (50), then b_calls 50 of 80.
    oct_ = run.view(RESOURCE_ORDER)["2026-10"]
    assert oct_.drawn(usage_resource_id="a_calls") == [50, 0]
    assert oct_.drawn(usage_resource_id="b_calls") == [50, 30]


DAY_ORDER = draw_order_scenario(
    "DAYORDER", use("2026-10-20", "80", "a_calls"), use("2026-10-04", "50", "b_calls")
)


def test_earlier_days_draw_before_later_days(run):
    # a_calls 80 on 20 October, b_calls 50 on 4 October: 4 October first (50), 20 October 50 of 80.
    oct_ = run.view(DAY_ORDER)["2026-10"]
    assert oct_.drawn(usage_resource_id="b_calls") == [50, 0]
    assert oct_.drawn(usage_resource_id="a_calls") == [50, 30]


MONTHLY_LAST_DAY = scenario(
    "MONTHLYDAY",
    [grant("G1", "P1", "100", binding="account"), grant("G2", "P2", "30", binding="account")],
    [asset("A1", "P1", "2026-10-01", end_date="2026-10-20"), asset("A2", "P2", "2026-10-25")],
    [use("2026-10-03", "50", "a_monthly")],
)  # fmt: skip


def test_monthly_window_is_drawn_on_the_period_last_day(run):
    # a_monthly 50 used on 3 October by A1. A1's 100 (account-bound) ends with A1 on 20 October
    # and expires unused; A2's 30 opens on 25 October. Drawn on 31 October: 30 from A2, 20 overage.
    oct_ = run.view(MONTHLY_LAST_DAY)["2026-10"]
    assert oct_.drawn() == [30, 20]
    assert oct_.summary()["window_date"] == pd.Timestamp("2026-10-31")
    assert oct_.entries("entry_date", "bucket_id", "entry_type", "quantity")[1:] == [
        ("2026-10-20", "A1:G1:2026-10-01", "expired", 100.0),
        ("2026-10-25", "A2:G2:2026-10-25", "credit", 30.0),
        ("2026-10-31", "A2:G2:2026-10-25", "debit", 30.0),
    ]


# --- the books -------------------------------------------------------------------------------

BOOKS = scenario(
    "BOOKS",
    [grant("PRO", "PRO", "1000", "monthly", rollover="capped", rollover_cap="300",
           binding="account"),
     grant("PACK", "PACK", "500", validity_months="2", binding="account")],
    [asset("A1", "PRO", "2026-09-01"), asset("A2", "PACK", "2026-10-10"),
     asset("B1", "PRO", "2026-09-01", account="BETA"),
     asset("B2", "PACK", "2026-10-10", account="BETA")],
    [use(day, q, asset_id=a, account_id=acc)
     for acc, a in [("ACME", "A1"), ("BETA", "B1")]
     for day, q in [("2026-09-03", "800"), ("2026-09-30", "150"), ("2026-10-05", "400"),
                    ("2026-10-20", "1300")]],
    accounts=[account("ACME"), account("BETA")],
)  # fmt: skip


def test_accounts_drawn_in_the_same_pass_do_not_affect_each_other(run):
    # ACME and BETA have the same catalog and usage:
    #   September: 800 + 150 = 950 of 1,000 used: 50 left; 1 Oct: 50 roll over (cap 300).
    #   October: rollover 50, October 1,000, PACK 500 from 10 Oct;
    #     5 Oct 400: rollover 50, October 350; 20 Oct 1,300: October 650, PACK 500, overage 150.
    oct_ = run.view(BOOKS)["2026-10"]
    assert oct_.usage.groupby("account_id")["overage"].sum().to_dict() == {"ACME": 150, "BETA": 150}
    acme, beta = (oct_.ledger[oct_.ledger["account_id"].eq(a)] for a in ["ACME", "BETA"])
    columns = ["entry_date", "entry_type", "quantity", "opening_balance", "closing_balance"]
    assert acme[columns].values.tolist() == beta[columns].values.tolist()
    assert (
        acme["bucket_id"].str.replace(r"^A", "B", regex=True).tolist() == beta["bucket_id"].tolist()
    )
    assert [q for t, q in acme[["entry_type", "quantity"]].values if t == "debit"] == [
        50, 350, 650, 500,
    ]  # fmt: skip


def test_a_scenario_run_alone_gives_the_same_books_as_with_all_the_others(run):
    books = [s for s in SCENARIOS if s.name == BOOKS]
    alone = run_periods(build_catalog(books, RESOURCES), books, "2026-09", "2026-10")
    columns = ["bucket_id", "entry_date", "entry_type", "quantity", "opening_balance",
               "closing_balance", "summary_id", "related_bucket_id"]  # fmt: skip
    for period in ["2026-09", "2026-10"]:
        together, by_itself = run.view(BOOKS)[period], alone.view(BOOKS)[period]
        assert by_itself.ledger[columns].equals(together.ledger[columns])
        assert by_itself.bucket_balances.equals(together.bucket_balances)
        assert by_itself.usage.equals(together.usage)


PER_SUMMARY = scenario(
    "PERSUMMARY", [grant("G", "P", "100")], [asset("A1", "P", "2026-10-01")],
    [use("2026-10-05", "150"), use("2026-10-06", "0"), use("2026-10-07", "0.000001")],
)  # fmt: skip


def test_per_summary_drawdown_quantity_is_debited_plus_overage(run):
    # 150 needed against 100: debited 100 + overage 50 = 150. Then 0 and 0.000001, both overage.
    oct_ = run.view(PER_SUMMARY)["2026-10"]
    row = oct_.summary(window_date="2026-10-05")
    assert (row["drawdown_quantity"], row["debited"], row["overage"]) == (150, 100, 50)
    assert oct_.drawn(window_date="2026-10-06") == [0, 0]
    assert oct_.drawn(window_date="2026-10-07") == [0, 0.000001]


EXACT = scenario(
    "EXACT", [grant("G", "P", "100")], [asset("A1", "P", "2026-10-01")],
    [use("2026-10-05", "30"), use("2026-10-06", "0"), use("2026-10-07", "0.000001")],
)  # fmt: skip


def test_debits_name_the_summary_they_served_and_are_exact(run):
    # 30, 0 and 0.000001 drawn from 100: debits of 30 and 0.000001 (nothing for 0), closing
    # 100 − 30 − 0.000001 = 69.999999.
    oct_ = run.view(EXACT)["2026-10"]
    served = oct_.ledger[oct_.ledger["entry_type"].eq("debit")]
    assert served["summary_id"].tolist() == [
        "ACME|A1|api_calls|2026-10-05", "ACME|A1|api_calls|2026-10-07",
    ]  # fmt: skip
    assert served["quantity"].tolist() == [30, 0.000001]
    assert oct_.balances.loc["A1:G:2026-10-01", "closing"] == 69.999999


def test_every_bucket_balances_and_every_summary_is_debited_plus_overage(run):
    # opening + credited − debited − expired − rolled over = closing ≥ 0 per bucket, the ledger
    # chains each bucket from opening to closing, and drawdown quantity = debited + overage per
    # summary, for every scenario of every period of the module (also checked as they run).
    for period in run.values():
        assert_books_balance(Drawdown(period.usage, period.ledger, period.bucket_balances,
                                      period.rollover_buckets))  # fmt: skip
        assert len(period.ledger)
