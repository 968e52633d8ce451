"""The standard flows: the daily refresh and the period-close schedules driven through a month end
by the time of their tick, closing by hand, and the new-usage sensor, on the sample source."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from consumption_pipeline.cli import main
from consumption_pipeline.closing.outbox import read_manifest
from consumption_pipeline.closing.register import ClosureRegister
from consumption_pipeline.definitions import BILLING_JOB, build_defs
from consumption_pipeline.defs.close import PERIOD_CLOSE_JOB
from consumption_pipeline.defs.schedules import TRIGGER_TAG
from consumption_pipeline.storage.settings import Settings
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.production.conftest import QUIET, copy_sample

SEP, OCT, NOV = "2026-09-01", "2026-10-01", "2026-11-01"


def at(day: str, hour: int) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


class Flows:
    """The code location of one deployment (no `as_of`: the flows judge on their tick)."""

    def __init__(self, source: Path, url: str, outbox: Path, instance: dg.DagsterInstance):
        self.source, self.url, self.outbox, self.instance = source, url, outbox, instance
        self._defs: dict[str, dg.Definitions] = {}

    def defs(self, as_of: str = "") -> dg.Definitions:
        """One code location per judging date, loaded once (as a code server loads it)."""
        if as_of not in self._defs:
            settings = Settings(source_dir=str(self.source), warehouse_url=self.url, as_of=as_of)
            self._defs[as_of] = build_defs(settings)
            self._defs[as_of].get_repository_def()
        return self._defs[as_of]

    def tick(self, schedule: str, when: dt.datetime):
        defs = self.defs()
        context = dg.build_schedule_context(
            instance=self.instance, scheduled_execution_time=when, resources=defs.resources,
            repository_def=defs.get_repository_def(),
        )  # fmt: skip
        return defs.get_schedule_def(schedule).evaluate_tick(context)

    def execute(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        """The requested run, in process, with its config and tags (the daemon would queue it)."""
        config = {**QUIET, **request.run_config}
        config["resources"] = {**config["resources"],
                               "outbox": {"config": {"path": str(self.outbox)}}}  # fmt: skip
        job = self.defs().resolve_job_def(request.job_name)
        result = job.execute_in_process(
            partition_key=request.partition_key, run_config=config, tags=request.tags,
            instance=self.instance, raise_on_error=False,
        )  # fmt: skip
        assert result.success, request
        return result

    def statuses(self, period: str) -> set[str]:
        return set(Warehouse(self.url).read_period("liable_summaries", period)["status"])


@pytest.fixture(scope="module")
def month_end(tmp_path_factory: pytest.TempPathFactory):
    """The schedules ticking from 31 October to 5 November, each requested run executed; returns
    the flows and what each tick asked for."""
    folder = tmp_path_factory.mktemp("month_end")
    with pytest.MonkeyPatch.context() as env:
        (folder / "home").mkdir()
        (folder / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env.setenv("DAGSTER_HOME", str(folder / "home"))
        with dg.DagsterInstance.get() as instance:
            flows = Flows(copy_sample(folder / "source"), f"sqlite:///{folder / 'w.db'}",
                          folder / "outbox", instance)  # fmt: skip
            ticks = {}
            ticks["refresh 10-31"] = flows.tick("refresh_open_periods", at("2026-10-31", 2))
            ticks["refresh 11-02"] = flows.tick("refresh_open_periods", at("2026-11-02", 2))
            flows.execute(ticks["refresh 11-02"].run_requests[0])  # October, in its grace days
            ticks["status 11-02"] = flows.statuses(OCT)
            ticks["close 11-03"] = flows.tick("close_periods", at("2026-11-03", 1))
            ticks["close 11-04"] = flows.tick("close_periods", at("2026-11-04", 1))
            flows.execute(ticks["close 11-04"].run_requests[0])
            ticks["status 11-04"] = flows.statuses(OCT)
            ticks["refresh 11-04"] = flows.tick("refresh_open_periods", at("2026-11-04", 2))
            ticks["close 11-05"] = flows.tick("close_periods", at("2026-11-05", 1))
            yield flows, ticks


def requested(tick) -> list[tuple[str, str]]:
    return [(r.job_name, r.partition_key) for r in tick.run_requests]


def test_the_daily_refresh_materializes_the_open_periods_oldest_first(month_end):
    _, ticks = month_end
    # 31 October: September closed on 4 October; only October is open.
    assert requested(ticks["refresh 10-31"]) == [(BILLING_JOB, OCT)]
    # 2 November: October is in its grace days (until the 4th), November has begun.
    assert requested(ticks["refresh 11-02"]) == [(BILLING_JOB, OCT), (BILLING_JOB, NOV)]
    assert ticks["status 11-02"] == {"provisional"}
    # 4 November: October is closed.
    assert requested(ticks["refresh 11-04"]) == [(BILLING_JOB, NOV)]


def test_runs_judge_the_day_of_their_tick_and_join_the_automation_lane(month_end):
    _, ticks = month_end
    request = ticks["refresh 11-02"].run_requests[1]
    assert request.run_config["resources"]["source"]["config"]["as_of"] == "2026-11-02"
    assert request.tags["consumption/lane"] == "automation"
    assert request.tags["consumption/as_of"] == "2026-11-02"


def test_the_close_schedule_closes_a_period_once_its_grace_period_has_passed(month_end):
    flows, ticks = month_end
    assert ticks["close 11-03"].run_requests == []
    assert "no period to close on 2026-11-03" in ticks["close 11-03"].skip_message
    assert requested(ticks["close 11-04"]) == [(PERIOD_CLOSE_JOB, OCT)]
    assert ticks["status 11-04"] == {"final"}
    closure = ClosureRegister(Warehouse(flows.url)).closure(OCT)
    assert closure["closed_on"] == dt.date(2026, 11, 4)
    manifest = read_manifest(flows.outbox, OCT)
    assert manifest["checksum"] == closure["checksum"]
    # October is the first period processed (no September history): ACME owes 300 credits of
    # overage x $0.02 = $6.00, its only USD line with an amount besides UMBRELLA's.
    lines = pd.read_csv(flows.outbox / "2026-10" / "liable_summaries.csv", dtype=str)
    acme = lines[lines["account_id"].eq("ACME")]
    assert acme[["overage_quantity", "amount"]].values.tolist() == [["300", "6.00"]]
    # Closed for good: the next day asks for nothing.
    assert ticks["close 11-05"].run_requests == []


def test_closing_a_closed_or_open_period_by_hand_is_refused_naming_it(month_end, capsys):
    flows, _ = month_end
    args = ["close", "--source", str(flows.source), "--warehouse", flows.url,
            "--outbox", str(flows.outbox)]  # fmt: skip
    runs = len(flows.instance.get_run_records())
    assert main([*args, "--period", "2026-10", "--as-of", "2026-12-01"]) == 2
    assert "period 2026-10 is closed: exported on 2026-11-04" in capsys.readouterr().err
    assert main([*args, "--period", "2026-11", "--as-of", "2026-11-25"]) == 2
    assert "period 2026-11 is open until 2026-12-04" in capsys.readouterr().err
    assert len(flows.instance.get_run_records()) == runs  # refused before any stage ran


def test_closing_by_hand_materializes_and_exports_the_period(month_end, capsys):
    flows, _ = month_end
    args = ["close", "--source", str(flows.source), "--warehouse", flows.url,
            "--outbox", str(flows.outbox), "--period", "2026-11", "--as-of", "2026-12-04"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    manifest = read_manifest(flows.outbox, NOV)
    assert f"period 2026-11 closed on 2026-12-04: {manifest['rows']} lines" in out
    assert flows.statuses(NOV) == {"final"}
    assert ClosureRegister(Warehouse(flows.url)).closed_periods() == [OCT, NOV]


# -- the new-usage sensor ----------------------------------------------------------------------


def sense(flows: Flows, as_of: str, cursor: str | None):
    defs = flows.defs(as_of)
    context = dg.build_sensor_context(
        instance=flows.instance, cursor=cursor, definitions=defs, resources=defs.resources
    )
    return defs.get_sensor_def("new_usage_files").evaluate_tick(context)


def late_usage(tick) -> list[dict]:
    return [{k.removeprefix("late_usage/"): v.value for k, v in o.metadata.items()}
            for o in tick.asset_events]  # fmt: skip


def events_file(flows: Flows, name: str, *stamps: str) -> Path:
    rows = [f"s-{i},ACME,A1,compute_hours,1,{t}" for i, t in enumerate(stamps)]
    path = flows.source / "usage" / name
    path.write_text("event_id,account_id,asset_id,usage_resource_id,quantity,occurred_at\n"
                    + "\n".join(rows) + "\n")  # fmt: skip
    return path


@pytest.fixture
def landing(tmp_path: Path, dagster_home: Path):
    """The sample's landing folder, for a warehouse that processed October and closed it."""
    with dg.DagsterInstance.get() as instance:
        flows = Flows(copy_sample(tmp_path / "source"), f"sqlite:///{tmp_path / 'w.db'}",
                      tmp_path / "outbox", instance)  # fmt: skip
        store = Warehouse(flows.url)
        store.replace_period(OCT, {"ingest_reconciliation": pd.DataFrame([{"events_read": 0}])})
        ClosureRegister(store).record({"period": "2026-10", "closed_on": "2026-11-04",
                                       "grace_days": 3, "rows": 0, "totals": {}, "checksum": "-"},
                                      flows.outbox / "2026-10", "run-1")  # fmt: skip
        yield flows


def test_new_usage_refreshes_the_open_periods_it_touches_and_reports_the_rest(landing):
    flows = landing
    first = sense(flows, "2026-11-10", None)
    # The sample's files: October's events (closed: restated, then November after it),
    # November's events, and rows without a date (every open period).
    assert requested(first) == [(BILLING_JOB, OCT), (BILLING_JOB, NOV)]
    assert [r.tags[TRIGGER_TAG] for r in first.run_requests] == ["restatement", "new_usage"]
    assert {r.run_config["resources"]["source"]["config"]["as_of"] for r in first.run_requests} == {
        "2026-11-10"
    }
    assert {(r["period"], r["status"]) for r in late_usage(first)} == {
        ("2026-09", "not processed"), ("2026-10", "closed")}  # fmt: skip
    assert sense(flows, "2026-11-10", first.cursor).run_requests == []

    added = events_file(flows, "more.csv", "2026-11-09T10:00:00Z")
    second = sense(flows, "2026-11-10", first.cursor)
    assert requested(second) == [(BILLING_JOB, NOV)] and late_usage(second) == []
    assert second.run_requests[0].run_key != first.run_requests[1].run_key

    events_file(flows, "late.csv", "2026-10-30T23:00:00Z", "2026-10-31T08:00:00+02:00")
    third = sense(flows, "2026-11-10", second.cursor)
    # Late usage of closed October: October is recomputed (its export stays, the difference is
    # restated), then November, whose opening balances are October's closing ones.
    assert requested(third) == [(BILLING_JOB, OCT), (BILLING_JOB, NOV)]
    assert [r.tags[TRIGGER_TAG] for r in third.run_requests] == ["restatement", "new_usage"]
    (report,) = late_usage(third)
    assert (report["period"], report["status"], report["events"], report["files"]) == (
        "2026-10", "closed", 2, "usage/late.csv")  # fmt: skip
    assert "booked as a restatement in the next open period" in report["message"]

    added.unlink()
    fourth = sense(flows, "2026-11-10", third.cursor)
    assert requested(fourth) == [(BILLING_JOB, NOV)]  # the periods it used to touch
    assert "usage/more.csv" not in json.loads(fourth.cursor)


def test_contract_changes_refresh_the_periods_of_their_dates_and_restate_closed_ones(landing):
    flows = landing
    first = sense(flows, "2026-11-10", None)
    # The sample's asset changes and credit are dated in closed October: reported like late usage.
    (october,) = [r for r in late_usage(first) if r["period"] == "2026-10"]
    assert "asset_changes.csv" in october["files"] and "credit_grants.csv" in october["files"]

    credits = flows.source / "credit_grants.csv"
    with credits.open("a") as handle:
        handle.write("cr-late,HOOLI,,credits,50,2026-10-20,,,Dispute settled\n")
    second = sense(flows, "2026-11-10", first.cursor)
    # A credit dated in closed October: October is recomputed (a restatement), then November.
    assert requested(second) == [(BILLING_JOB, OCT), (BILLING_JOB, NOV)]
    assert [r.tags[TRIGGER_TAG] for r in second.run_requests] == ["restatement", "new_usage"]
    (report,) = late_usage(second)
    assert (report["period"], report["status"], report["files"]) == (
        "2026-10", "closed", "credit_grants.csv")  # fmt: skip
    # The file holds the sample's credit and the new one, both dated in October.
    assert report["message"].startswith("late contract changes: 2 rows of credit_grants.csv "
                                        "belong to period 2026-10, which is closed")  # fmt: skip

    changes = flows.source / "asset_changes.csv"
    with changes.open("a") as handle:
        handle.write("ch-nov,H1,2026-11-05,4,\n")
    third = sense(flows, "2026-11-10", second.cursor)
    # Its rows before the change touched closed October too: restated again with November.
    assert requested(third) == [(BILLING_JOB, OCT), (BILLING_JOB, NOV)]

    prices = flows.source / "price_book.csv"
    prices.write_text(prices.read_text() + "support_tickets,EUR,per_unit,,20.00,,,2026-01-01,\n")
    fourth = sense(flows, "2026-11-10", third.cursor)
    # Any other catalog file: every open period, no restatement.
    assert requested(fourth) == [(BILLING_JOB, NOV)] and late_usage(fourth) == []


def test_late_usage_of_an_earlier_closed_period_restates_it_and_every_later_period(landing):
    store = Warehouse(landing.url)
    store.replace_period(SEP, {"ingest_reconciliation": pd.DataFrame([{"events_read": 0}])})
    ClosureRegister(store).record({"period": "2026-09", "closed_on": "2026-10-04",
                                   "grace_days": 3, "rows": 0, "totals": {}, "checksum": "-"},
                                  landing.outbox / "2026-09", "run-0")  # fmt: skip
    tick = sense(landing, "2026-11-10", None)  # the sample has September's events
    assert requested(tick) == [(BILLING_JOB, SEP), (BILLING_JOB, OCT), (BILLING_JOB, NOV)]
    assert [r.tags[TRIGGER_TAG] for r in tick.run_requests] == ["restatement"] * 2 + ["new_usage"]


@pytest.fixture
def in_grace(tmp_path: Path, dagster_home: Path):
    """The sample's landing folder on 2 October, for a warehouse that processed September: the
    sensor's first tick has seen the sample's files."""
    with dg.DagsterInstance.get() as instance:
        flows = Flows(copy_sample(tmp_path / "source"), f"sqlite:///{tmp_path / 'w.db'}",
                      tmp_path / "outbox", instance)  # fmt: skip
        Warehouse(flows.url).replace_period(
            SEP, {"ingest_reconciliation": pd.DataFrame([{"events_read": 0}])}
        )
        flows.cursor = sense(flows, "2026-10-02", None).cursor
        yield flows


def test_new_usage_in_the_grace_days_refreshes_that_period_and_the_next(in_grace):
    events_file(in_grace, "grace.csv", "2026-09-30T20:00:00Z")
    # September is open until 10-04; October's balances open from September's closing ones.
    assert requested(sense(in_grace, "2026-10-02", in_grace.cursor)) == [
        (BILLING_JOB, SEP), (BILLING_JOB, OCT)]  # fmt: skip


def test_new_usage_for_the_newest_open_period_refreshes_it_alone(in_grace):
    events_file(in_grace, "today.csv", "2026-10-01T20:00:00Z")
    assert requested(sense(in_grace, "2026-10-02", in_grace.cursor)) == [(BILLING_JOB, OCT)]


def test_an_unreadable_file_refreshes_every_open_period(in_grace):
    (in_grace.source / "usage" / "broken.csv").write_text("event_id;account_id\n1;ACME\n")
    # Its runs will fail naming the file, rather than the file being skipped silently.
    assert requested(sense(in_grace, "2026-10-02", in_grace.cursor)) == [
        (BILLING_JOB, SEP), (BILLING_JOB, OCT)]  # fmt: skip
