"""The ad hoc summary launched the way an analyst launches it: through the real Dagster webserver.

The webserver runs on loopback against the project's workspace, with a temporary Dagster home; the
run is launched with config through its GraphQL API (dagster-graphql's client), and the report is
read back from the materialization.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from consumption_pipeline.audit import store as audit_store
from consumption_pipeline.storage.settings import DEFAULT_SOURCE, PROJECT_ROOT
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.audit.conftest import AS_OF, new_dagster_home

STARTUP_SECONDS = 90
IMMEDIATE_LAUNCH = """run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
"""
RUN_SECONDS = 120

LATEST_REPORT = """
query Report($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        runId
        metadataEntries {
          label
          ... on MarkdownMetadataEntry { mdStr }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}
"""

RUN_FAILURE = """
query Failure($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events { __typename ... on ExecutionStepFailureEvent { error { message } } }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Webserver:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port)

    def graphql(self, query: str, variables: dict) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                                 timeout=30)  # fmt: skip
        response.raise_for_status()
        return response.json()["data"]

    def launch(self, config: dict) -> str:
        """Launch the ad hoc asset with config; retried while the code location still loads."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                return self.client.submit_job_execution(
                    "__ASSET_JOB", asset_selection=["adhoc_summary"],
                    run_config={"ops": {"adhoc_summary": {"config": config}}},
                )  # fmt: skip
            except DagsterGraphQLClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def wait(self, run_id: str) -> str:
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            status = self.client.get_run_status(run_id).value
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not finish within {RUN_SECONDS} s")


@pytest.fixture(scope="module")
def webserver(sample_run, tmp_path_factory) -> Iterator[Webserver]:
    folder = tmp_path_factory.mktemp("webserver")
    port = free_port()
    home = new_dagster_home(folder)
    # Launched runs start at once, without the daemon that a queue would need.
    with (home / "dagster.yaml").open("a") as config:
        config.write(IMMEDIATE_LAUNCH)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CONSUMPTION_WAREHOUSE_URL": sample_run.url,
        "CONSUMPTION_SOURCE_DIR": str(DEFAULT_SOURCE),
        "CONSUMPTION_AS_OF": AS_OF,
        "CONSUMPTION_OUTBOX_DIR": str(folder / "outbox"),
    }
    command = [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1",
               "-p", str(port), "-w", "workspace.yaml"]  # fmt: skip
    log = (folder / "webserver.log").open("w")
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log,
                               start_new_session=True)  # fmt: skip
    server = Webserver(port)
    try:
        _wait_until_up(server, process, folder / "webserver.log")
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the webserver and its code server
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _wait_until_up(server: Webserver, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the webserver exited ({process.returncode}):\n{log.read_text()}")
        try:
            if requests.get(f"{server.url}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the webserver did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


GOOD = {"account_id": "ACME", "start_date": "2026-10-01", "end_date": "2026-10-31",
        "granularity": "week", "request_id": "from-the-ui"}  # fmt: skip
BAD = {"account_id": "ACME", "start_date": "2026-10-31", "end_date": "2026-10-01"}


@pytest.fixture(scope="module")
def launched(webserver) -> dict[str, str]:
    """Both runs launched at once, so that they run side by side: config name → run id."""
    return {"good": webserver.launch(GOOD), "bad": webserver.launch(BAD)}


def test_an_analyst_launches_the_ad_hoc_summary_from_the_webserver(webserver, launched, sample_run):
    run_id = launched["good"]
    assert webserver.wait(run_id) == "SUCCESS"
    data = webserver.graphql(LATEST_REPORT, {"path": ["adhoc_summary"]})
    materialization = data["assetOrError"]["assetMaterializations"][0]
    assert materialization["runId"] == run_id
    entries = {e["label"]: e for e in materialization["metadataEntries"]}
    report = entries["report"]["mdStr"]
    assert report.startswith("# Ad hoc summary from-the-ui")
    # October by week: 500 credits on Mon 10-05 (week of 10-05), 1,300 on Tue 10-20 (week of
    # 10-19) with the 100 overage × $0.02 = $2.00.
    assert "| 2026-10-05 | 2026-10-11 | A1 | compute_hours | credits |" in report
    assert "### 2026-10 ACME asset A1 credits: 2.00 USD (final)" in report
    rows = audit_store.read_rows(Warehouse(sample_run.url).engine, "adhoc_summaries",
                                 {"request_id": "from-the-ui"})  # fmt: skip
    assert sorted(rows["drawdown_quantity"]) == [500, 1300]
    assert rows["overage"].sum() == 100


def test_bad_config_from_the_webserver_fails_the_run_with_a_clear_message(webserver, launched):
    run_id = launched["bad"]
    assert webserver.wait(run_id) == "FAILURE"
    events = webserver.graphql(RUN_FAILURE, {"runId": run_id})["logsForRun"]["events"]
    messages = [
        e["error"]["message"] for e in events if e["__typename"] == "ExecutionStepFailureEvent"
    ]
    assert any("end_date 2026-10-01 is before start_date 2026-10-31" in m for m in messages)
