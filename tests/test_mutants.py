"""The mutant catalogue of ``make mutants`` (tools/mutant_catalogue.py) is sound without running it:
every lab break exists, every patch applies and still loads, every mapped test exists, and the
catalogue covers the areas the issue names with at least 30 live mutants."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from eastwest.backends.lab.breaks import BREAKS
from eastwest.support import install
from eastwest.support.errors import ConfigError, ManifestError
from eastwest.support.topology import load_topology
from tools.mutant_catalogue import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[1]
LIVE = [m for m in MUTANTS if not m.equivalent]


def test_catalogue_has_30_live_mutants_over_every_area_with_unique_names() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert len(LIVE) >= 30, len(LIVE)
    assert {"trust", "routing", "gateway", "locality", "failover", "exposure"} <= {m.area for m in LIVE}
    assert all(m.equivalent and len(m.equivalent) > 40 for m in MUTANTS if m not in LIVE), "an equivalent mutant needs its reason"


def test_every_lab_break_is_a_mutant_and_every_break_mutant_is_a_lab_break() -> None:
    assert {m.name for m in MUTANTS if not m.patches} == set(BREAKS)


@pytest.mark.parametrize("mutant", LIVE, ids=lambda m: m.name)
def test_mapped_tests_exist_and_the_cause_is_a_valid_pattern(mutant: Mutant) -> None:
    re.compile(mutant.cause)
    assert mutant.cause, "a live mutant needs the words that name its cause"
    for node in mutant.tests:
        path, _, name = node.partition("::")
        text = (ROOT / path).read_text()
        assert not name or f"def {name}(" in text, f"{node} does not exist"


@pytest.mark.parametrize("mutant", [m for m in MUTANTS if m.patches], ids=lambda m: m.name)
def test_patches_apply_and_change_what_they_say(tmp_path: Path, mutant: Mutant) -> None:
    copy = tmp_path / "manifests"
    shutil.copytree(ROOT / "manifests", copy)
    mutant.apply_to(copy)
    changed = [rel for rel, _ in mutant.patches if (copy / rel).read_text() != (ROOT / "manifests" / rel).read_text()]
    assert changed, f"{mutant.name}: the patch changed nothing"
    topology = load_topology(copy / "topology.yaml")
    for rel, _ in mutant.patches:
        try:
            if rel.endswith(".values.yaml"):
                install.helm_values(copy, topology, "us", rel)
            else:
                install.documents(copy, topology, "us", [rel])
        except (ManifestError, ConfigError) as exc:
            pytest.fail(f"{mutant.name}: the patched {rel} no longer loads: {exc}")
