"""The dashboard's data functions on the sample warehouse, on SQLite and PostgreSQL.

Expected numbers are the sample's hand-computed ones (data/sample/README.md) or come from plain
SQL aggregates over the warehouse tables, a path independent of the functions under test.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from consumption_pipeline.dashboard import data
from consumption_pipeline.dashboard.catalog import CatalogView
from consumption_pipeline.dashboard.store import ReadOnlyWarehouse, WarehouseUnavailable

SEP, OCT, NOV = date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)


@pytest.fixture(scope="module")
def sql(store: ReadOnlyWarehouse) -> Iterator[sa.Engine]:
    """A plain engine on the same warehouse, for the independent aggregates."""
    engine = sa.create_engine(store.url)
    yield engine
    engine.dispose()


def aggregate(engine: sa.Engine, query: str, **params) -> dict[tuple, Decimal]:
    """{(group columns...): value} from a query whose last column is a number (SQLite's REAL sums
    are rounded to the warehouse's 6 decimals)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query), params).all()
    return {
        tuple(str(v) for v in row[:-1]): Decimal(repr(round(float(row[-1]), 6))).normalize()
        for row in rows
    }


def account(catalog: CatalogView, store: ReadOnlyWarehouse, account_id: str) -> data.Scope:
    scope = data.find_account(store, catalog, account_id)
    assert scope is not None
    return scope


def asset(catalog: CatalogView, store: ReadOnlyWarehouse, asset_id: str) -> data.Scope:
    scope = data.find_asset(store, catalog, asset_id)
    assert scope is not None
    return scope


# -- who and when --------------------------------------------------------------------------------


def test_periods_are_the_ones_the_pipeline_ran(store):
    assert store.periods() == [SEP, OCT, NOV]


def test_unknown_and_hostile_ids_find_nothing(store, catalog):
    # Were the id pasted into SQL, the second would match every row and find an account.
    for hostile in ["NOPE", "x' OR '1'='1", 'ACME"; DROP TABLE liable_summaries; --', "<b>A1</b>"]:
        assert data.find_account(store, catalog, hostile) is None
        assert data.find_asset(store, catalog, hostile) is None
    assert store.periods() == [SEP, OCT, NOV]  # nothing was dropped


def test_an_asset_belongs_to_its_account(store, catalog):
    scope = asset(catalog, store, "G2")
    assert (scope.account.account_id, scope.asset.product_id) == ("GLOBEX", "API_PACK")
    assert scope.asset.quantity == 2


# -- index -----------------------------------------------------------------------------------


def test_index_lists_every_account_with_the_periods_totals(store, catalog, sql):
    rows = {r.account.account_id: r for r in data.index_rows(store, catalog, OCT)}
    assert sorted(rows) == [
        "ACME",
        "GLOBEX",
        "HOOLI",
        "INITECH",
        "SOYLENT",
        "STARK",
        "UMBRELLA",
        "VANDELAY",
    ]
    # The worked example: 1,800 credits consumed, 100 of them overage at $0.02 = $2.00.
    acme = rows["ACME"]
    assert [(t.resource.usage_resource_id, t.consumption, t.overage) for t in acme.totals] == [
        ("credits", 1800, 100)
    ]
    assert (acme.amount, acme.status) == (Decimal("2.00"), "final")
    amounts = aggregate(
        sql,
        "SELECT account_id, SUM(amount) FROM liable_summaries WHERE period = :p GROUP BY account_id",
        p=OCT,
    )
    assert {a: r.amount for a, r in rows.items()} == {a: v for (a,), v in amounts.items()}
    consumption = aggregate(
        sql,
        "SELECT account_id, usage_resource_id, SUM(consumption) FROM liable_summaries "
        "WHERE period = :p GROUP BY account_id, usage_resource_id",
        p=OCT,
    )
    shown = {
        (a, t.resource.usage_resource_id): t.consumption for a, r in rows.items() for t in r.totals
    }
    assert shown == consumption


def test_index_of_an_open_period_is_provisional_and_shows_accounts_without_usage(store, catalog):
    rows = {r.account.account_id: r for r in data.index_rows(store, catalog, NOV)}
    assert (rows["ACME"].amount, rows["ACME"].status, rows["ACME"].totals) == (None, "no usage", [])
    # November closes 3 days after its end; the sample is judged on 2026-11-25. The two
    # commitment accounts have no November usage either.
    quiet = {"ACME", "STARK", "VANDELAY"}
    assert {rows[a].status for a in quiet} == {"no usage"}
    assert {r.status for a, r in rows.items() if a not in quiet} == {"provisional"}


@pytest.mark.parametrize(
    ("search", "found"),
    [("", ["ACME", "GLOBEX", "HOOLI", "INITECH", "SOYLENT", "STARK", "UMBRELLA", "VANDELAY"]),
     ("glob", ["GLOBEX"]), ("CORPORATION", ["ACME"]), ("  inc. ", ["HOOLI", "UMBRELLA"]),
     ("b.v", ["SOYLENT"]), ("zzz", [])],
)  # fmt: skip
def test_index_search_matches_id_or_name_ignoring_case(store, catalog, search, found):
    rows = data.index_rows(store, catalog, OCT, search)
    assert [r.account.account_id for r in rows] == found


# -- usage -------------------------------------------------------------------------------------


def test_usage_of_the_worked_example_per_period_and_per_day(store, catalog):
    [compute] = data.usage(store, catalog, account(catalog, store, "ACME"), [SEP, OCT])
    assert compute.resource.usage_resource_id == "compute_hours"
    assert compute.drawdown_resource.usage_resource_id == "credits"
    # September 80 h = 800 credits all from buckets; October 50 h + 130 h = 1,800 credits, of
    # which 1,700 from buckets and 100 overage.
    assert [(t.period, t.consumption, t.drawdown_quantity, t.debited, t.overage)
            for t in compute.totals] == [(SEP, 80, 800, 800, 0), (OCT, 180, 1800, 1700, 100)]  # fmt: skip
    svg = ET.fromstring(str(compute.chart))
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = {g.get("data-day"): Decimal(g.get("data-value")) for g in svg.iterfind(".//s:g", ns)}
    assert bars == {"2026-09-15": 80, "2026-10-05": 50, "2026-10-20": 130}
    # The y axis runs to 150 in steps of 50; on 10-20 the overage is 100 of 1,300 credits,
    # i.e. 10 of the 130 hours: its rect is 10/150 of the plot's height.
    ticks = [t.text for t in svg.iterfind(".//s:text[@class='tick']", ns)]
    assert ticks == ["0", "50", "100", "150"]
    last = next(g for g in svg.iterfind(".//s:g", ns) if g.get("data-day") == "2026-10-20")
    over = next(r for r in last.iterfind("s:rect", ns) if r.get("class") == "overage")
    plot_height = 220 - 26 - 32
    assert float(over.get("height")) == pytest.approx(10 / 150 * plot_height, abs=0.1)


def test_usage_of_an_asset_is_only_its_tagged_usage(store, catalog):
    # G3 (Starter) ended on 2026-10-20; GLOBEX's usage tagged G3 afterwards still shows here.
    resources = data.usage(store, catalog, asset(catalog, store, "G3"), [SEP, OCT, NOV])
    assert [u.resource.usage_resource_id for u in resources] == [
        "api_calls", "gb_stored", "support_tickets"
    ]  # fmt: skip
    account_resources = data.usage(store, catalog, account(catalog, store, "GLOBEX"), [OCT])
    assert "compute_hours" in [u.resource.usage_resource_id for u in account_resources]


# -- grants -------------------------------------------------------------------------------------


def test_buckets_of_the_worked_example(store, catalog):
    buckets = {
        b.bucket_id: b for b in data.grants(store, catalog, account(catalog, store, "ACME"), OCT)
    }
    assert sorted(buckets) == [
        "A1:PRO_CREDITS:2026-09-01", "A1:PRO_CREDITS:2026-09-01:rollover",
        "A1:PRO_CREDITS:2026-10-01", "A2:PACK_CREDITS:2026-10-10",
    ]  # fmt: skip
    september = buckets["A1:PRO_CREDITS:2026-09-01"]
    # 800 drawn on 09-15; the 200 left rolled over on 10-01 (cap 200).
    assert (september.granted, september.consumed, september.rolled_over, september.balance) == (
        1000,
        800,
        200,
        0,
    )
    assert september.consumed_share == "80.0%"
    assert september.policy == "renews monthly; rollover capped at 200, at most 1×"
    rollover = buckets["A1:PRO_CREDITS:2026-09-01:rollover"]
    assert (rollover.generation, rollover.parent_bucket_id) == (1, "A1:PRO_CREDITS:2026-09-01")
    assert (rollover.granted, rollover.consumed, rollover.balance) == (200, 200, 0)
    october = buckets["A1:PRO_CREDITS:2026-10-01"]
    assert (october.consumed, october.balance) == (1000, 0)  # 300 on 10-05 + 700 on 10-20
    pack = buckets["A2:PACK_CREDITS:2026-10-10"]
    assert (pack.granted, pack.consumed, pack.balance, pack.valid_to) == (
        500,
        500,
        0,
        date(2026, 12, 10),
    )
    assert pack.policy == "one-time, valid 2 months; rollover none"


def test_at_the_end_of_november_the_pro_bucket_still_holds_1000(store, catalog):
    buckets = {
        b.bucket_id: b for b in data.grants(store, catalog, account(catalog, store, "ACME"), NOV)
    }
    assert buckets["A1:PRO_CREDITS:2026-11-01"].balance == 1000
    assert buckets["A1:PRO_CREDITS:2026-11-01"].is_open is True
    assert buckets["A2:PACK_CREDITS:2026-10-10"].balance == 0


def test_bucket_balances_equal_the_warehouse_closing_balances(store, catalog, sql):
    closing = aggregate(
        sql, "SELECT bucket_id, closing FROM bucket_balances WHERE period = :p", p=NOV
    )
    debited = aggregate(
        sql, "SELECT bucket_id, SUM(debited) FROM bucket_balances GROUP BY bucket_id"
    )
    for account_id in catalog.accounts:
        for bucket in data.grants(store, catalog, account(catalog, store, account_id), NOV):
            assert bucket.balance == closing[(bucket.bucket_id,)]
            assert bucket.consumed == debited[(bucket.bucket_id,)]


def test_an_assets_buckets_are_those_of_its_grants_whatever_their_binding(store, catalog):
    buckets = data.grants(store, catalog, asset(catalog, store, "A2"), NOV)
    assert [(b.bucket_id, b.binding) for b in buckets] == [
        ("A2:PACK_CREDITS:2026-10-10", "account")
    ]


def test_projected_exhaustion_comes_from_the_forecast_table_when_there_is_one(sqlite_copy, catalog):
    url = f"sqlite:///{sqlite_copy}"
    with sqlite3.connect(sqlite_copy) as conn:
        conn.execute("DROP TABLE IF EXISTS bucket_forecasts")
    store = ReadOnlyWarehouse(url)
    scope = data.find_account(store, catalog, "ACME")
    buckets = data.grants(store, catalog, scope, NOV)
    assert data.with_forecasts(store, buckets, NOV) is False
    assert {b.exhaustion for b in buckets} == {None}
    with sqlite3.connect(sqlite_copy) as conn:
        conn.execute(
            "CREATE TABLE bucket_forecasts (period DATE, as_of DATE, bucket_id TEXT, "
            "exhausted_on DATE, outlook TEXT)"
        )
        conn.executemany(
            "INSERT INTO bucket_forecasts VALUES (?, ?, ?, ?, ?)",
            [  # the later as_of of November wins; an October forecast is not November's
                ("2026-11-01", "2026-11-10", "A1:PRO_CREDITS:2026-11-01", "2026-11-20", "runs_out"),
                ("2026-11-01", "2026-11-25", "A1:PRO_CREDITS:2026-11-01", "2026-11-28", "runs_out"),
                ("2026-10-01", "2026-10-25", "A2:PACK_CREDITS:2026-10-10", "2026-10-20", "empty"),
            ],
        )
    buckets = data.grants(store, catalog, scope, NOV)
    assert data.with_forecasts(store, buckets, NOV) is True
    found = {b.bucket_id: (b.exhaustion, b.outlook) for b in buckets}
    assert found["A1:PRO_CREDITS:2026-11-01"] == (date(2026, 11, 28), "runs out")
    assert found["A2:PACK_CREDITS:2026-10-10"] == (None, None)
    store.engine.dispose()


# -- rates -------------------------------------------------------------------------------------


def rate_rows(store, catalog, scope, period):
    return [
        (r.asset_id, r.resource.usage_resource_id, r.source, r.rate_asset_id, r.effective_from,
         [t.text for t in r.tiers])
        for r in data.rates(store, catalog, scope, period)
    ]  # fmt: skip


def test_an_asset_negotiated_rate_beats_the_price_book(store, catalog):
    rows = rate_rows(store, catalog, asset(catalog, store, "I1"), OCT)
    assert (
        "I1", "api_calls", "asset-negotiated", "I1", date(2026, 9, 15), ["¥0.1 per call"]
    ) in rows  # fmt: skip
    assert ("I1", "credits", "price book", None, date(2026, 1, 1), ["¥3 per credit"]) in rows


def test_an_account_negotiated_rate_applies_to_every_asset_of_the_account(store, catalog):
    credits = [r for r in rate_rows(store, catalog, account(catalog, store, "GLOBEX"), OCT)
               if r[1] == "credits"]  # fmt: skip
    assert {(r[0], r[2], r[5][0]) for r in credits} == {
        ("G1", "account-negotiated", "€0.015 per credit"),
        ("G2", "account-negotiated", "€0.015 per credit"),
    }


def test_a_negotiated_row_in_another_currency_does_not_count(store, catalog):
    rows = rate_rows(store, catalog, account(catalog, store, "UMBRELLA"), OCT)
    storage = {r[2] for r in rows if r[1] == "gb_stored"}
    assert storage == {"price book"}  # UMBRELLA's negotiated gb_stored row is in EUR


def test_a_rate_change_inside_the_period_shows_both_rates(store, catalog):
    rows = rate_rows(store, catalog, account(catalog, store, "SOYLENT"), OCT)
    api = [(r[4], r[5]) for r in rows if r[1] == "api_calls"]
    # The EUR rows of price_book.csv: the old rate ends on 10-16, the new one starts that day.
    assert api == [
        (date(2026, 1, 1), ["€0.0009 per call + €4.50 flat", "€0.0007 per call"]),
        (date(2026, 10, 16), ["€0.00095 per call + €5.00 flat", "€0.00075 per call + €2.00 flat"]),
    ]


def test_no_price_for_overage_that_is_not_chargeable(store, catalog):
    rows = rate_rows(store, catalog, asset(catalog, store, "G3"), OCT)
    assert ("G3", "support_tickets", "no price: overage not chargeable", None, None, []) in rows


def test_a_commitment_rate_is_shown_as_such_with_its_assets_rows(store, catalog):
    # STARK's October overage is priced at its commitment asset S1's own rate (policy lowest);
    # VANDELAY's (bounded) at the price book's.
    stark = rate_rows(store, catalog, account(catalog, store, "STARK"), OCT)
    assert stark == [(None, "credits", "commitment rate", "S1", date(2026, 9, 1),
                      ["$0.012 per credit"])]  # fmt: skip
    vandelay = rate_rows(store, catalog, account(catalog, store, "VANDELAY"), OCT)
    assert vandelay == [(None, "credits", "price book", None, date(2026, 1, 1),
                         ["$0.02 per credit"])]  # fmt: skip


def test_each_bucket_shows_its_origin_and_the_change_or_credit_behind_it(store, catalog):
    buckets = {
        b.bucket_id: b for b in data.grants(store, catalog, account(catalog, store, "HOOLI"), OCT)
    }
    shown = {i: (b.origin, b.behind, b.granted) for i, b in buckets.items()
             if b.resource.usage_resource_id == "credits"}  # fmt: skip
    # H1 (2 seats of PRO from 09-01): September's 2,000 (it ends on 10-01) and October's 2,000;
    # the upsell to 5 on 10-11 adds
    # floor(3 × 1000 × 21 / 31) = 2,032; 200 rolled over from September (cap 200); the goodwill
    # credit of 500.
    assert shown == {
        "H1:PRO_CREDITS:2026-09-01": ("grant", "", 2000),
        "H1:PRO_CREDITS:2026-09-01:rollover": ("rollover", "", 200),
        "H1:PRO_CREDITS:2026-10-01": ("grant", "", 2000),
        "H1:PRO_CREDITS:2026-10-01:amend:ch-hooli-upsell": (
            "amendment", "change ch-hooli-upsell", 2032),
        "credit:cr-hooli-outage": (
            "credit", "credit cr-hooli-outage: Goodwill: API outage on 2026-10-07", 500),
    }  # fmt: skip
    nov = {
        b.bucket_id: b for b in data.grants(store, catalog, account(catalog, store, "HOOLI"), NOV)
    }
    # November: PRO granted on the 3 seats after the downgrade; STARTER (H2) cut by the notice.
    assert (nov["H1:PRO_CREDITS:2026-11-01"].granted, nov["H1:PRO_CREDITS:2026-11-01"].behind) == (
        3000, "change ch-hooli-downgrade")  # fmt: skip
    api = nov["H2:STARTER_API:2026-11-01"]
    assert (api.granted, api.valid_to, api.behind) == (
        9333,
        date(2026, 11, 15),
        "change ch-hooli-cancel",
    )
    committed = data.grants(store, catalog, account(catalog, store, "STARK"), OCT)
    assert [(b.bucket_id, b.origin) for b in committed] == [
        ("S1:COMMIT_L_CREDITS:2026-09-01", "commitment"),
        ("S1:COMMIT_L_CREDITS:2026-10-01", "commitment"),
    ]


# -- wallet statement --------------------------------------------------------------------------


def test_the_wallet_statement_shows_a_credits_reason(store, catalog):
    statements = data.wallet_statement(store, catalog, account(catalog, store, "HOOLI"), OCT)
    [credits] = [s for s in statements if s.resource.usage_resource_id == "credits"]
    granted = [line.description for line in credits.lines if line.bucket_id == "credit:cr-hooli-outage"
               and line.entry_type == "credit"]  # fmt: skip
    assert granted == ["credit granted: Goodwill: API outage on 2026-10-07"]


def test_the_worked_examples_october_statement(store, catalog):
    [credits] = data.wallet_statement(store, catalog, account(catalog, store, "ACME"), OCT)
    # Opening: 200 left in the September grant. Then, in ledger order: the October grant opens
    # (+1,000 → 1,200); the September balance rolls out (−200 → 1,000) into the rollover bucket
    # (+200 → 1,200); 10-05 draws 200 + 300 (→ 700); PACK opens (+500 → 1,200); 10-20 draws
    # 700 + 500 (→ 0).
    assert credits.opening == 200
    assert [(line.entry_type, line.change, line.balance) for line in credits.lines] == [
        ("credit", 1000, 1200), ("rollover out", -200, 1000), ("rollover in", 200, 1200),
        ("debit", -200, 1000), ("debit", -300, 700), ("credit", 500, 1200),
        ("debit", -700, 500), ("debit", -500, 0),
    ]  # fmt: skip
    assert credits.closing == 0
    assert credits.lines[-1].description == "130 hours of Compute hours on 2026-10-20, asset A1"
    assert [line.entry_date for line in credits.lines] == sorted(
        line.entry_date for line in credits.lines
    )


def test_statement_closing_balances_equal_the_warehouse_bucket_balances(store, catalog, sql):
    for period in (SEP, OCT, NOV):
        closing = aggregate(
            sql,
            "SELECT b.account_id, r.usage_resource_id, SUM(b.closing) FROM bucket_balances b "
            "JOIN (SELECT DISTINCT bucket_id, usage_resource_id FROM entitlement_buckets) r "
            "ON r.bucket_id = b.bucket_id WHERE b.period = :p "
            "GROUP BY b.account_id, r.usage_resource_id",
            p=period,
        )
        shown = {
            (a, s.resource.usage_resource_id): s.closing
            for a in catalog.accounts
            for s in data.wallet_statement(store, catalog, account(catalog, store, a), period)
        }
        assert shown == closing, period


# -- invoices ----------------------------------------------------------------------------------


def test_invoices_of_the_worked_example(store, catalog):
    invoices = data.invoices(store, catalog, account(catalog, store, "ACME"), [SEP, OCT, NOV])
    assert [(i.period, i.status, i.total, len(i.lines)) for i in invoices] == [
        (OCT, "final", Decimal("2.00"), 1), (SEP, "final", Decimal("0.00"), 1)
    ]  # fmt: skip


def test_invoice_totals_equal_the_warehouse_liable_amounts(store, catalog, sql):
    totals = aggregate(
        sql,
        "SELECT account_id, period, SUM(amount) FROM liable_summaries GROUP BY account_id, period",
    )
    shown = {
        (a, str(i.period)): i.total
        for a in catalog.accounts
        for i in data.invoices(store, catalog, account(catalog, store, a), [SEP, OCT, NOV])
    }
    assert shown == {(a, p[:10]): v for (a, p), v in totals.items()}
    i1 = data.invoices(store, catalog, asset(catalog, store, "I1"), [NOV])
    assert {line["asset_id"] for line in i1[0].lines} == {"I1"}
    assert i1[0].status == "provisional"


# -- data integrity ----------------------------------------------------------------------------


def test_quarantined_events_by_reason(store, catalog):
    umbrella = data.integrity(store, catalog, account(catalog, store, "UMBRELLA"), OCT)
    # gw-90002 (both conflicting copies) and gw-90005 (tagged with GLOBEX's G1).
    assert umbrella.quarantined == [("asset_of_another_account", 1), ("conflict", 2)]
    # Two malformed rows (no readable account) and gw-90004 (account WAYNE) may be anyone's.
    assert umbrella.unattributed == [("malformed_row", 2), ("unknown_account", 1)]
    g1 = data.integrity(store, catalog, asset(catalog, store, "G1"), OCT)
    # G1's own bad rows (gw-90003, gw-90006) and UMBRELLA's row tagged with it.
    assert g1.quarantined == [
        ("asset_of_another_account", 1), ("invalid_quantity", 1), ("too_many_decimals", 1)
    ]  # fmt: skip
    assert g1.unattributed == []
    assert data.integrity(store, catalog, account(catalog, store, "ACME"), OCT).quarantined == []


def test_conservation_laws_hold_on_the_sample(store, catalog):
    found = data.integrity(store, catalog, account(catalog, store, "ACME"), OCT)
    # October: 285 read = 105 accepted + 1 duplicate + 10 quarantined + 169 of other periods.
    r = found.reconciliation
    assert (r["events_read"], r["accepted"], r["duplicates"], r["quarantined"],
            r["other_periods"]) == (285, 105, 1, 10, 169)  # fmt: skip
    # ACME's October: 2 usage summaries (10-05, 10-20), 4 buckets, one liable line.
    assert [(law.checked, law.broken) for law in found.laws] == [(1, 0), (2, 0), (4, 0), (1, 0)]
    for account_id in catalog.accounts:
        for period in (SEP, OCT, NOV):
            laws = data.integrity(store, catalog, account(catalog, store, account_id), period).laws
            assert all(law.holds for law in laws), (account_id, period)


def test_a_broken_law_is_reported(sqlite_copy, catalog):
    with sqlite3.connect(sqlite_copy) as conn:  # a debit that went missing
        conn.execute(
            "UPDATE bucket_balances SET debited = debited - 1 "
            "WHERE bucket_id = 'A1:PRO_CREDITS:2026-10-01' AND period = '2026-10-01'"
        )
    store = ReadOnlyWarehouse(f"sqlite:///{sqlite_copy}")
    laws = data.integrity(store, catalog, data.find_account(store, catalog, "ACME"), OCT).laws
    assert [law.broken for law in laws] == [0, 0, 1, 0]
    store.engine.dispose()


# -- read only ---------------------------------------------------------------------------------


def test_the_warehouse_cannot_be_written_through_the_dashboard(store):
    with pytest.raises(sa.exc.DBAPIError, match="read-only|readonly"):
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM liable_summaries"))
    assert store.exists("liable_summaries", {"account_id": "ACME"})


def test_a_missing_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseUnavailable, match="no warehouse file"):
        ReadOnlyWarehouse(f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert not (tmp_path / "nowhere.db").exists()
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(WarehouseUnavailable, match="tables missing: .*liable_summaries"):
        ReadOnlyWarehouse(f"sqlite:///{tmp_path / 'empty.db'}")
