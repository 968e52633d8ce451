"""The layers of the package are a contract: import-linter finds no import that goes up a layer,
and it does find one when a module reaches up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from consumption_pipeline.storage.settings import PROJECT_ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` over the package found in `root`, with the contracts of its pyproject."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )


def test_no_module_imports_a_layer_above_its_own():
    done = lint_imports(PROJECT_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_an_import_up_a_layer_breaks_the_contract(tmp_path: Path):
    shutil.copytree(PROJECT_ROOT / "consumption_pipeline", tmp_path / "consumption_pipeline")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    tables = tmp_path / "consumption_pipeline" / "storage" / "tables.py"
    # Inside a function, where a cycle would hide from Python, not from the contract.
    tables.write_text(tables.read_text() + "\n\ndef up():\n    import consumption_pipeline.cli\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout
    # The program imports everything: through it, storage would reach every layer, so the two
    # independence contracts break as well.
    assert "Contracts: 0 kept, 3 broken." in done.stdout
    assert (
        "consumption_pipeline.storage is not allowed to import consumption_pipeline.cli"
        in done.stdout
    )
    assert "- consumption_pipeline.storage.tables -> consumption_pipeline.cli (l." in done.stdout


def test_no_module_imports_itself_through_others():
    import grimp

    graph = grimp.build_graph("consumption_pipeline", cache_dir=None)
    cycles = sorted(
        (module, imported)
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.find_shortest_chain(importer=imported, imported=module)
    )
    assert cycles == []
