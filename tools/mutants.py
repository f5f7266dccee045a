"""``make mutants``: run the suites against a catalogue of realistic breakages and print the mutation score.

For each mutant (tools/mutant_catalogue.py) it starts one lab, broken by a ``--lab-break`` or by a
patched copy of manifests/, runs the suite tests mapped to that mutant with a short convergence
limit (a broken mesh never converges, so waiting longer proves nothing), and, only if they all
pass, the whole of suites/. A mutant is killed when a test fails or errors; its cause counts as
named when the failure output matches the catalogue's words for it. Two mutants run at a time.

Prints a table (mutant, what it models, killed by, cause named) and the score, writes
reports/mutants.json, and exits 1 when a non-equivalent mutant survives.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.mutant_catalogue import MUTANTS, Mutant  # noqa: E402

#: seconds one pytest run of one mutant may take before it counts as hung (reported, never a kill)
RUN_LIMIT_S = 600.0
_OUTCOME = re.compile(r"^(FAILED|ERROR) (\S+)", re.M)


@dataclass(frozen=True)
class Result:
    name: str
    area: str
    kind: str
    models: str
    killed_by: tuple[str, ...]
    cause_named: bool
    runs: tuple[str, ...]  # which pytest runs were needed: "mapped", "all suites"
    seconds: float
    note: str = ""


def _pytest(args: list[str], convergence: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--mesh-timeout",
               f"convergence={convergence}", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_LIMIT_S,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def run_mutant(mutant: Mutant, convergence: float) -> Result:
    """Run one mutant: mapped tests first, the whole suites only if they do not kill it."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        if mutant.patches:
            manifests = Path(tmp) / "manifests"
            shutil.copytree(ROOT / "manifests", manifests)
            mutant.apply_to(manifests)
            extra = ["--manifests", str(manifests)]
        else:
            extra = ["--lab-break", mutant.name]
        runs: list[str] = []
        output = ""
        killed: list[str] = []
        for label, targets in (("mapped", list(mutant.tests)), ("all suites", ["suites/"])):
            runs.append(label)
            try:
                done = _pytest([*targets, *extra], convergence)
            except subprocess.TimeoutExpired:
                return Result(mutant.name, mutant.area, mutant.kind, mutant.models, (), False, tuple(runs),
                              time.monotonic() - start, note=f"hung for {RUN_LIMIT_S:.0f}s in the {label} run")
            output = done.stdout + done.stderr
            killed = sorted(set(m.group(2) for m in _OUTCOME.finditer(done.stdout)))
            if done.returncode not in (0, 1) and not killed:
                return Result(mutant.name, mutant.area, mutant.kind, mutant.models, (), False, tuple(runs),
                              time.monotonic() - start, note=f"pytest exited {done.returncode}: {output.strip()[-300:]}")
            if killed:
                break
    named = bool(killed) and bool(re.search(mutant.cause, output))
    note = ""
    if killed and not named:  # say what the failure did say, so a reader can judge the cause line
        said = re.findall(r"^E\s+(?:likely cause: .*|\S.*expected .*)$", output, re.M)
        note = said[0].strip()[:400] if said else ""
    return Result(mutant.name, mutant.area, mutant.kind, mutant.models, tuple(killed), named, tuple(runs),
                  time.monotonic() - start, note)


def table(results: list[Result], equivalent: list[Mutant]) -> str:
    rows = [("mutant", "area", "kind", "killed by", "cause named", "s", "what it models")]
    for r in results:
        killer = ", ".join(k.removeprefix("suites/") for k in r.killed_by[:2]) + (" ..." if len(r.killed_by) > 2 else "")
        rows.append((r.name, r.area, r.kind, killer or f"SURVIVED {r.note}".strip(), "yes" if r.cause_named else "no",
                     f"{r.seconds:.0f}", r.models))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 6 else cell for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "-" * min(200, sum(widths) + 12))
    unnamed = [r for r in results if r.killed_by and not r.cause_named]
    if unnamed:
        lines += ["", "killed without naming the cause; what the failure said:"]
        lines += [f"  {r.name}: {r.note or '(no likely-cause or expected line)'}" for r in unnamed]
    if equivalent:
        lines += ["", "equivalent mutants (not counted):"]
        lines += [f"  {m.name} ({m.area}): {m.models}; equivalent because {m.equivalent}" for m in equivalent]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mutants", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2: the machine has 2 cores)")
    parser.add_argument("--convergence", type=float, default=4.0, help="convergence limit of broken runs, seconds (default 4)")
    parser.add_argument("--json", type=Path, default=ROOT / "reports" / "mutants.json", help="where to write the results")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in {m.name for m in MUTANTS}]
    if unknown:
        parser.error(f"unknown mutant(s) {', '.join(unknown)}; see --list")
    chosen = [m for m in MUTANTS if not args.names or m.name in args.names]
    if args.list:
        for m in chosen:
            print(f"{m.name:38} {m.area:10} {m.kind:9} {'EQUIVALENT ' if m.equivalent else ''}{m.models}")
        return 0
    live = [m for m in chosen if not m.equivalent]
    equivalent = [m for m in chosen if m.equivalent]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda m: run_mutant(m, args.convergence), live))
    wall = time.monotonic() - start
    killed = [r for r in results if r.killed_by]
    named = [r for r in killed if r.cause_named]
    print(table(results, equivalent))
    score = len(killed) / len(results) if results else 1.0
    cause_share = len(named) / len(killed) if killed else 0.0
    print(f"\nmutation score: {len(killed)}/{len(results)} killed ({score:.0%}); cause named for {len(named)}/{len(killed)} "
          f"({cause_share:.0%}); {len(equivalent)} equivalent not counted; wall time {wall:.0f}s with {args.jobs} at a time")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"wall_s": round(wall, 1), "score": score, "cause_named": cause_share,
                                     "results": [asdict(r) for r in results],
                                     "equivalent": [{"name": m.name, "reason": m.equivalent} for m in equivalent]}, indent=2))
    return 0 if len(killed) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
