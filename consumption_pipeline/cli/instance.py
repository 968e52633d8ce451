"""What the commands share to run Dagster in this process: the instance's home, quiet logging
and one line for a failed run."""

from __future__ import annotations

import re
from pathlib import Path

from consumption_pipeline.storage.settings import (
    PROJECT_ROOT,
)

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / "data" / "dagster_home"
# The run's own log (with tracebacks) stays in the instance; the terminal gets one line.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(RuntimeError):
    """A stage failed; the message says which period, which step and why."""


def dagster_home() -> Path:
    DEFAULT_DAGSTER_HOME.mkdir(parents=True, exist_ok=True)
    config = DEFAULT_DAGSTER_HOME / "dagster.yaml"
    if not config.exists():
        config.write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    return DEFAULT_DAGSTER_HOME


def failure(result) -> str:
    import dagster as dg  # deferred: loaded by then, but not by a command that stops at a flag

    # A failed blocking check explains the run better than the step error it raises.
    checks = [e.asset_check_evaluation_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION"]  # fmt: skip
    failed = [c for c in checks
              if not c.passed and c.blocking and c.severity == dg.AssetCheckSeverity.ERROR]  # fmt: skip
    if failed:
        return "; ".join(f"blocking check '{c.check_name}' on {c.asset_key.to_user_string()} "
                         f"failed: {c.description}" for c in failed)  # fmt: skip
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            text = error.message.strip()
            own = re.match(r"consumption_pipeline(\.\w+)+: ", text)  # our errors say it all
            return f"step '{event.step_key}' failed: {text[own.end() :] if own else text}"
    return "the run failed"
