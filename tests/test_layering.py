"""The library stands apart from the pytest layer, and the options never clash with common plugins."""

from __future__ import annotations

import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import eastwest

ROOT = Path(__file__).resolve().parents[1]

#: the pytest plugin is installed inside the package as eastwest.fixtures; it is the only part allowed pytest
PLUGIN = "eastwest.fixtures"

BLOCK_PYTEST = """
import importlib, sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "pytest" or name.startswith(("_pytest", "pytest_", "allure")):
            raise ImportError(f"the library imported {name}")
sys.meta_path.insert(0, Blocker())
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 1)
"""


def library_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages(eastwest.__path__, "eastwest.") if not m.name.startswith(PLUGIN)]
    return sorted({"eastwest", *names})


def test_every_library_module_imports_without_pytest() -> None:
    modules = library_modules()
    assert "eastwest.backends.lab.supervisor" in modules and "eastwest.mesh" in modules, modules
    result = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, *modules], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"imported {len(modules)}" in result.stdout


def test_the_blocker_catches_a_module_that_imports_pytest(tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text("import pytest\n")
    result = subprocess.run([sys.executable, "-c", BLOCK_PYTEST, "leaky"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=60)
    assert result.returncode != 0 and "the library imported pytest" in result.stderr


def test_no_module_outside_a_backend_folder_names_a_backend() -> None:
    """Backends are reached through the registry only: no import of one, no test of a backend's name."""
    from eastwest.backends import registry

    names = "|".join(map(re.escape, registry()))
    pattern = re.compile(rf"eastwest\.backends\.({names})\b|backend\s*[!=]=\s*[\"']({names})[\"']|[\"']({names})[\"']\s*[!=]=\s*\S*backend")
    offenders = []
    for folder in ("eastwest", "fixtures", "suites"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_relative_to(ROOT / "eastwest" / "backends"):
                continue
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_suites_run_with_pytest_timeout_installed() -> None:
    """pytest-timeout owns --timeout; eastwest's options live under --mesh-timeout and friends."""
    import importlib.util

    assert importlib.util.find_spec("pytest_timeout") is not None, "the test extra installs pytest-timeout"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "120",
         "--mesh-timeout", "convergence=20", "suites/topology/test_mesh_identity.py"],
        capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout


def test_every_package_is_installed() -> None:
    """pyproject lists packages by hand (fixtures/ is installed as eastwest.fixtures): none may be forgotten."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "eastwest").rglob("__init__.py")}
    on_disk |= {"eastwest.fixtures"} if (ROOT / "fixtures" / "__init__.py").is_file() else set()
    assert on_disk <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(on_disk - listed)}"
