"""The `consumption-pipeline` program, one module per command: `run` (cli/run.py), `close`
(cli/close.py), `trace` (cli/trace.py) and `dashboard` (cli/dashboard.py). Every flag and setting
is checked before a command starts; a refusal or a failed run is one line on standard error."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from consumption_pipeline.cli.close import add_close_command
from consumption_pipeline.cli.dashboard import add_dashboard_command
from consumption_pipeline.cli.instance import RunFailed
from consumption_pipeline.cli.run import add_run_command
from consumption_pipeline.cli.trace import add_trace_command


def main(argv: list[str] | None = None) -> int:
    try:
        return _run_command(argv)
    except RunFailed as failure:
        print(f"consumption-pipeline: {failure}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"consumption-pipeline: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("consumption-pipeline: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line, never a traceback (see the docstring)
        print(f"consumption-pipeline: {_first_line(error)}", file=sys.stderr)
        return 1


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "stopped unexpectedly"


def _run_command(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)  # a bad flag or setting stops here, before any run
    return args.command(args)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming the flag (argparse would print the whole usage first)."""
        problem = message.removeprefix("argument ")
        self.exit(2, f"{self.prog}: {problem} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="consumption-pipeline", description=__doc__)
    commands = parser.add_subparsers(required=True)
    for add in (add_run_command, add_trace_command, add_dashboard_command, add_close_command):
        add(commands)
    return parser
