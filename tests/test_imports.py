"""Every module of the package imports, in a fresh interpreter, with the declared dependencies.

A fresh ``python`` process imports each module of ``structebm`` in turn and reports every
failure (module and error) at once; running it apart from the test process means modules
already imported by other tests cannot hide a missing import. In an environment made with
``pip install -e .`` alone (no extras), a failure here is an import that the package's core
dependencies do not satisfy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "structebm"

SCRIPT = """
import importlib, json, sys, traceback
failures = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as error:  # report every module, whatever it raised
        failures[name] = "".join(traceback.format_exception_only(type(error), error)).strip()
print(json.dumps(failures))
"""


def package_modules() -> list[str]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_the_module_list_covers_the_package():
    modules = package_modules()
    assert "structebm" in modules and "structebm.cli" in modules and "structebm.training.module" in modules
    assert len(modules) == len(list(PACKAGE.rglob("*.py")))


def test_every_module_imports_in_a_fresh_interpreter():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *package_modules()],
        capture_output=True, text=True, timeout=600, cwd=PACKAGE.parent,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(f"{name}: {error}" for name, error in failures.items())


def test_a_failing_import_is_reported():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "structebm.finite", "structebm.no_such_module"],
        capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent,
    )
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(failures) == ["structebm.no_such_module"] and "ModuleNotFoundError" in failures["structebm.no_such_module"]
