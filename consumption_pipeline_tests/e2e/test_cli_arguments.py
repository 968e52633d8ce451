"""Every command refuses a bad flag, setting or location with one line naming it, before any run:
the real `consumption-pipeline` program in a process of its own, exit status 2, no traceback, and
nothing written."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from consumption_pipeline import cli
from consumption_pipeline.storage.settings import DEFAULT_SOURCE
from consumption_pipeline.storage.warehouse import Warehouse
from consumption_pipeline_tests.postgres import POSTGRES_SERVER

PROGRAM = str(Path(sys.executable).with_name("consumption-pipeline"))
HELP = "(see consumption-pipeline {} --help)"


def invoke(folder: Path, *args: str, **env: str) -> tuple[int, str]:
    """Run the program in `folder` (its Dagster home, outbox and default warehouse are there) and
    return its exit status and standard error."""
    (folder / "home").mkdir(exist_ok=True)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONSUMPTION_")},
        "DAGSTER_HOME": str(folder / "home"), "CONSUMPTION_OUTBOX_DIR": str(folder / "outbox"),
        "CONSUMPTION_WAREHOUSE_URL": f"sqlite:///{folder / 'warehouse.db'}", **env,
    }  # fmt: skip
    done = subprocess.run(
        [PROGRAM, *args], cwd=folder, env=environment, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in done.stderr + done.stdout
    return done.returncode, done.stderr


def contents(folder: Path) -> dict[str, str]:
    """Every file and folder under `folder`, with the SHA-256 of each file."""
    return {str(p.relative_to(folder)): _digest(p) for p in sorted(folder.rglob("*"))}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def refused(folder: Path, *args: str, **env: str) -> str:
    """The one line of a refusal; the folder holds exactly what it held before."""
    (folder / "home").mkdir(exist_ok=True)
    before = contents(folder)
    status, stderr = invoke(folder, *args, **env)
    assert status == 2, stderr
    assert stderr.count("\n") == 1, stderr
    assert contents(folder) == before
    return stderr.rstrip("\n")


@pytest.mark.parametrize(
    "args, line",
    [
        (["run", "--timezone", "Mars/Olympus"], "consumption-pipeline run: --timezone: unknown "
         "time zone 'Mars/Olympus': expected an IANA name such as UTC or Europe/Paris"),
        (["run", "--timezone", "europe/paris"], "consumption-pipeline run: --timezone: unknown "
         "time zone 'europe/paris': expected an IANA name such as Europe/Paris"),
        (["close", "--period", "2026-09", "--timezone", "../../etc/passwd"],
         "consumption-pipeline close: --timezone: unknown time zone '../../etc/passwd': "
         "expected an IANA name such as UTC or Europe/Paris"),
        (["run", "--as-of", "2026-02-30"], "consumption-pipeline run: --as-of: expected a date "
         "YYYY-MM-DD, e.g. 2026-10-04, got '2026-02-30'"),
        (["close", "--period", "2026-09", "--as-of", "yesterday"], "consumption-pipeline close: "
         "--as-of: expected a date YYYY-MM-DD, e.g. 2026-10-04, got 'yesterday'"),
        (["run", "--grace-days", "-1"], "consumption-pipeline run: --grace-days: expected a "
         "whole number of days from 0 to 366, got '-1'"),
        (["close", "--period", "2026-09", "--grace-days", "1e9"], "consumption-pipeline close: "
         "--grace-days: expected a whole number of days from 0 to 366, got '1e9'"),
        (["run", "--from", "2026-13"], "consumption-pipeline run: --from: expected a billing "
         "period YYYY-MM, e.g. 2026-09, got '2026-13'"),
        (["run", "--to", "2026-9"], "consumption-pipeline run: --to: expected a billing period "
         "YYYY-MM, e.g. 2026-09, got '2026-9'"),
        (["close"], "consumption-pipeline close: the following arguments are required: --period"),
        (["run", "--dask", "http://10.0.0.5:8787/status"], "consumption-pipeline run: --dask: "
         "expected a Dask scheduler address such as tcp://10.0.0.5:8786, got "
         "'http://10.0.0.5:8787/status'"),
        (["close", "--period", "2026-09", "--dask", "scheduler"], "consumption-pipeline close: "
         "--dask: expected a Dask scheduler address such as tcp://10.0.0.5:8786, got 'scheduler'"),
        (["close", "--period", "2026-09-01"], "consumption-pipeline close: --period: expected a "
         "billing period YYYY-MM, e.g. 2026-09, got '2026-09-01'"),
        (["trace", "--period", "../x"], "consumption-pipeline trace: --period: expected a billing "
         "period YYYY-MM, e.g. 2026-09, got '../x'"),
        (["trace", "--max-events", "0"], "consumption-pipeline trace: --max-events: expected a "
         "whole number from 1 to 1000000000, got '0'"),
        (["dashboard", "--port", "65536"], "consumption-pipeline dashboard: --port: expected a "
         "port number from 0 to 65535, got '65536'"),
        (["run", "--warehouse", "foo://x"], "consumption-pipeline run: --warehouse: the "
         "warehouse is SQLite or PostgreSQL (sqlite:///data/warehouse.db or "
         "postgresql+psycopg2://user@host:5432/billing), got 'foo://x'"),
        (["trace", "--warehouse", "not a url"], "consumption-pipeline trace: --warehouse: "
         "expected a SQLAlchemy URL such as sqlite:///data/warehouse.db or "
         "postgresql+psycopg2://user@host:5432/billing, got 'not a url'"),
        (["dashboard", "--warehouse", "postgresql+asyncpg://h/db"], "consumption-pipeline "
         "dashboard: --warehouse: 'postgresql+asyncpg://h/db': driver 'postgresql+asyncpg' is "
         "not installed: write postgresql+psycopg2://h/db"),
        (["run", "--warehouse", "postgresql+psycopg://u:secret@h:5432/billing"],
         "consumption-pipeline run: --warehouse: 'postgresql+psycopg://u:***@h:5432/billing': "
         "driver 'postgresql+psycopg' is not installed: write "
         "postgresql+psycopg2://u:***@h:5432/billing"),
        (["run", "--warehouse", "postgres://u@h:5432/billing"], "consumption-pipeline run: "
         "--warehouse: 'postgres://u@h:5432/billing': 'postgres' is not a SQLAlchemy scheme: "
         "write postgresql+psycopg2://u@h:5432/billing"),
        (["close", "--period", "2026-09", "--warehouse", "postgresql://u@h:5432/"],
         "consumption-pipeline close: --warehouse: 'postgresql://u@h:5432/' names no database: "
         "write one such as postgresql+psycopg2://u@h:5432/billing"),
        (["run", "--warehouse", "postgresql://u:secret@h:54x2/billing"], "consumption-pipeline "
         "run: --warehouse: expected a SQLAlchemy URL such as sqlite:///data/warehouse.db or "
         "postgresql+psycopg2://user@host:5432/billing, got 'postgresql://u:***@h:54x2/billing'"),
        (["trace", "--warehouse", "postgresql://h:99999/billing"], "consumption-pipeline trace: "
         "--warehouse: 'postgresql://h:99999/billing': port 99999 is not a port number (1 to "
         "65535)"),
        (["run", "--warehouse", "sqlite://data/w.db"], "consumption-pipeline run: --warehouse: "
         "'sqlite://data/w.db' is not a SQLite URL: write sqlite:///data/w.db (three slashes "
         "before a relative path, four before an absolute one)"),
        (["dashboard", "--warehouse", "sqlite://"], "consumption-pipeline dashboard: "
         "--warehouse: 'sqlite://' names no file (a warehouse in memory is gone when the command "
         "ends): write one such as sqlite:///data/warehouse.db"),
    ],
)  # fmt: skip
def test_a_bad_flag_is_refused_in_one_line_naming_it(tmp_path: Path, args: list[str], line: str):
    command = args[0]
    assert refused(tmp_path, *args) == f"{line} {HELP.format(command)}"


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("GRACE_DAYS", "three", "expected a whole number of days from 0 to 366, got 'three'"),
        ("AS_OF", "2026-11-31", "expected a date YYYY-MM-DD, e.g. 2026-10-04, got '2026-11-31'"),
        ("BILLING_TIMEZONE", "Mars", "unknown time zone 'Mars': expected an IANA name such as "
         "UTC or Europe/Paris"),
        ("FIRST_PERIOD", "2024-01-15", "expected the first day of a month YYYY-MM-01, got "
         "'2024-01-15'"),
        ("ANOMALY_FACTOR", "nan", "expected a number above 1, got 'nan'"),
        ("LOCK_WAIT_SECONDS", "inf", "expected a number of seconds from 0 to 86400, got 'inf'"),
        ("DASK_ADDRESS", "localhost", "expected a Dask scheduler address such as "
         "tcp://10.0.0.5:8786, got 'localhost'"),
        ("WAREHOUSE_URL", "mysql://h/db", "the warehouse is SQLite or PostgreSQL (sqlite:///"
         "data/warehouse.db or postgresql+psycopg2://user@host:5432/billing), got 'mysql://h/db'"),
        ("WAREHOUSE_URL", "postgresql+psycopg://h/billing", "'postgresql+psycopg://h/billing': "
         "driver 'postgresql+psycopg' is not installed: write postgresql+psycopg2://h/billing"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["run", "dashboard"])
def test_a_bad_setting_stops_every_command_naming_the_variable(
    tmp_path: Path, variable: str, value: str, expected: str, command: str
):
    name = f"CONSUMPTION_{variable}"
    line = refused(tmp_path, command, "--help", **{name: value})
    assert line == f"consumption-pipeline: {name}: {expected}"


def current_period() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")


@pytest.mark.parametrize(
    "args, line",
    [
        (["run", "--from", "2026-10", "--to", "2026-09"], "--to 2026-09 is before --from 2026-10"),
        (["run", "--from", "2023-12", "--to", "2024-01"],
         "--from 2023-12 is before the first billing period 2024-01"),
        (["run", "--to", "2026-08"], "--to 2026-08 is before the first period with usage 2026-09"),
        (["run", "--from", "2199-12", "--to", "2199-12"],
         "--from 2199-12 has not begun: the current billing period is {current}"),
        (["close", "--period", "2023-12"], "--period 2023-12 is before the first billing period "
         "2024-01"),
        (["close", "--period", "2199-01"], "--period 2199-01 has not begun: the current billing "
         "period is {current}"),
    ],
)  # fmt: skip
def test_periods_outside_the_billing_periods_are_refused(
    tmp_path: Path, args: list[str], line: str
):
    source = ["--source", str(DEFAULT_SOURCE)]
    expected = line.format(current=current_period())
    assert refused(tmp_path, *args, *source) == f"consumption-pipeline: {expected}"


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of the sample whose event files a test breaks."""
    shutil.copytree(DEFAULT_SOURCE, tmp_path / "source")
    return tmp_path / "source"


def test_a_run_without_a_range_over_a_broken_file_names_the_file(broken: Path):
    (broken / "usage" / "storage_snapshots.parquet").write_bytes(b"PAR1 not really")
    line = refused(broken.parent, "run", "--source", str(broken))
    assert line.startswith(
        f"consumption-pipeline: {broken / 'usage' / 'storage_snapshots.parquet'}: cannot be read "
        "as Parquet: "
    ), line


def test_a_missing_source_folder_or_event_file_is_named(broken: Path):
    (broken / "usage" / "gone.csv").symlink_to(broken / "nowhere.csv")
    line = refused(broken.parent, "run", "--source", str(broken))
    link = broken / "usage" / "gone.csv"
    assert (
        line
        == f"consumption-pipeline: {link}: a link to {broken / 'nowhere.csv'}, which does not exist"
    )
    line = refused(broken.parent, "run", "--source", str(broken / "missing"))
    assert line == f"consumption-pipeline: --source {broken / 'missing'}: no such folder"
    (broken / "missing").mkdir()
    line = refused(broken.parent, "run", "--source", str(broken / "missing"))
    assert line == f"consumption-pipeline: {broken / 'missing' / 'usage'}: usage folder is missing"
    shutil.rmtree(broken / "missing")
    shutil.rmtree(broken / "usage")
    (broken / "usage").write_text("a file, not a folder")
    line = refused(broken.parent, "run", "--source", str(broken))
    assert line == f"consumption-pipeline: {broken / 'usage'}: is not a folder"


def test_a_warehouse_that_cannot_be_opened_is_named_before_any_run(tmp_path: Path):
    run = ["run", "--source", str(DEFAULT_SOURCE), "--from", "2026-09", "--to", "2026-09"]
    (tmp_path / "afile").write_text("in the way")
    url = f"sqlite:///{tmp_path / 'afile' / 'w.db'}"
    assert refused(tmp_path, *run, "--warehouse", url) == (
        f"consumption-pipeline: --warehouse: warehouse {url}: cannot create its folder "
        f"{tmp_path / 'afile'}: "
        "File exists"
    )
    missing = f"{POSTGRES_SERVER}/cp_no_such_database"
    line = refused(tmp_path, *run, "--warehouse", missing)
    assert line.startswith(
        f"consumption-pipeline: --warehouse: warehouse {missing}: opening it: "
    ), line
    assert line.endswith('database "cp_no_such_database" does not exist'), line
    bare = "postgresql://postgres@nohost.invalid:1/billing"  # the installed driver, not psycopg 3
    line = refused(tmp_path, *run, "--warehouse", bare)
    assert line == (
        "consumption-pipeline: --warehouse: warehouse "
        "postgresql+psycopg2://postgres@nohost.invalid:1/billing: opening it: could not translate "
        'host name "nohost.invalid" to address: Name or service not known'
    )
    line = refused(tmp_path, "dashboard", "--warehouse", bare)
    assert line == (
        f"consumption-pipeline: {bare}: cannot read the warehouse: could not translate host name "
        '"nohost.invalid" to address: Name or service not known'
    )


def test_a_warehouse_from_the_environment_is_named_with_its_variable(tmp_path: Path):
    (tmp_path / "afile").write_text("in the way")
    url = f"sqlite:///{tmp_path / 'afile' / 'w.db'}"
    run = ["run", "--source", str(DEFAULT_SOURCE), "--from", "2026-09", "--to", "2026-09"]
    assert refused(tmp_path, *run, CONSUMPTION_WAREHOUSE_URL=url) == (
        f"consumption-pipeline: CONSUMPTION_WAREHOUSE_URL: warehouse {url}: cannot create its "
        f"folder {tmp_path / 'afile'}: File exists"
    )
    trace = ["trace", "--period", "2026-09", "--account", "ACME", "--resource", "credits"]
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    assert refused(tmp_path, *trace, CONSUMPTION_WAREHOUSE_URL=missing) == (
        f"consumption-pipeline: CONSUMPTION_WAREHOUSE_URL: warehouse {missing}: no such file (run "
        "`consumption-pipeline run`)"
    )


def test_a_trace_reads_and_never_creates_a_warehouse(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'nothing.db'}"
    line = ["trace", "--warehouse", url, "--period", "2026-09", "--account", "ACME",
            "--resource", "credits", "--source", str(DEFAULT_SOURCE)]  # fmt: skip
    assert refused(tmp_path, *line) == (
        f"consumption-pipeline: --warehouse: warehouse {url}: no such file (run "
        "`consumption-pipeline run`)"
    )
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    Warehouse(empty).engine.dispose()  # every table, no period run
    line[2] = empty
    status, stderr = invoke(tmp_path, *line)
    assert (status, stderr) == (
        2,
        "consumption-pipeline: no liable summary for account 'ACME' in 2026-09\n",
    )


@pytest.mark.parametrize("command", [["run"], ["close", "--period", "2026-09"],
                                     ["trace", "--period", "2026-09", "--account", "ACME",
                                      "--resource", "credits"], ["dashboard"]])  # fmt: skip
def test_a_missing_source_folder_is_named_with_its_flag_or_variable(tmp_path: Path, command):
    missing = tmp_path / "no-source"
    assert refused(tmp_path, *command, "--source", str(missing)) == (
        f"consumption-pipeline: --source {missing}: no such folder"
    )
    assert refused(tmp_path, *command, CONSUMPTION_SOURCE_DIR=str(missing)) == (
        f"consumption-pipeline: CONSUMPTION_SOURCE_DIR {missing}: no such folder"
    )
    (tmp_path / "a-file").write_text("not a folder")
    assert refused(tmp_path, *command, "--source", str(tmp_path / "a-file")) == (
        f"consumption-pipeline: --source {tmp_path / 'a-file'}: not a folder"
    )


@pytest.mark.parametrize("command", [["run", "--from", "2026-09", "--to", "2026-09"],
                                     ["close", "--period", "2026-09", "--as-of", "2026-10-04"]])  # fmt: skip
def test_a_dagster_home_that_is_not_a_folder_is_named_before_anything_is_written(
    tmp_path: Path, command: list[str]
):
    source = ["--source", str(DEFAULT_SOURCE)]
    missing = tmp_path / "no-home"
    assert refused(tmp_path, *command, *source, DAGSTER_HOME=str(missing)) == (
        f"consumption-pipeline: DAGSTER_HOME: {missing}: no such folder: create it (mkdir -p "
        f"{missing}) or unset DAGSTER_HOME to use the project's data/dagster_home"
    )
    assert refused(tmp_path, *command, *source, DAGSTER_HOME="relative/home") == (
        "consumption-pipeline: DAGSTER_HOME: 'relative/home' is not an absolute path (Dagster "
        f"needs one): use {tmp_path / 'relative' / 'home'}"
    )
    (tmp_path / "a-file").write_text("not a folder")
    assert refused(tmp_path, *command, *source, DAGSTER_HOME=str(tmp_path / "a-file")) == (
        f"consumption-pipeline: DAGSTER_HOME: {tmp_path / 'a-file'}: not a folder"
    )
    assert not (tmp_path / "warehouse.db").exists()


def test_a_dagster_yaml_the_instance_refuses_is_one_line_naming_the_home(tmp_path: Path):
    home = tmp_path / "broken-home"
    home.mkdir()
    (home / "dagster.yaml").write_text("run_storage: [\n")
    status, stderr = invoke(tmp_path, "run", "--source", str(DEFAULT_SOURCE), "--from", "2026-09",
                            "--to", "2026-09", DAGSTER_HOME=str(home))  # fmt: skip
    assert status == 2 and stderr.count("\n") == 1, stderr
    assert stderr.startswith(
        f"consumption-pipeline: DAGSTER_HOME: {home}: cannot open the Dagster instance (its "
        "dagster.yaml?): "
    ), stderr


def test_an_unexpected_error_is_one_line_without_its_class_or_traceback(monkeypatch, capsys):
    def broken(argv):
        raise RuntimeError("the lake is read-only\nsecond line")

    monkeypatch.setattr(cli, "_run_command", broken)
    assert cli.main(["run"]) == 1
    assert capsys.readouterr().err == "consumption-pipeline: the lake is read-only\n"
    monkeypatch.setattr(cli, "_run_command", lambda argv: (_ for _ in ()).throw(KeyError()))
    assert cli.main(["run"]) == 1
    assert capsys.readouterr().err == "consumption-pipeline: stopped unexpectedly\n"


def test_a_dask_scheduler_that_does_not_answer_is_named_before_any_run(tmp_path: Path):
    line = refused(tmp_path, "run", "--dask", "tcp://127.0.0.1:9")
    assert line.startswith("consumption-pipeline: --dask: no Dask scheduler answers at "
                           "tcp://127.0.0.1:9: ")  # fmt: skip
