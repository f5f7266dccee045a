"""The picture of a failover test: every request against time, the fault window shaded.

Top panel: one dot per request in the lane of the cluster that answered it (or "failed"),
coloured by outcome; bottom panel: each request's latency (log scale). The fault window
(asked for to removed) is shaded, the moments it landed and left are marked, and so are the
failover and failback the figures found. Rendered with matplotlib's Agg backend (no display).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from eastwest.mesh import LoadSample
from eastwest.support.failover import FailoverFigures, error_kind

_OK = "#2e7d32"
_REMOTE = "#1565c0"
_FAILED = "#c62828"


def timeline_png(samples: Sequence[LoadSample], figures: FailoverFigures, title: str) -> bytes:
    """A PNG of the load's requests around the fault."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure  # the object API: no global pyplot state between tests
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lanes = [figures.home] + sorted({s.cluster for s in samples if s.ok and s.cluster and s.cluster != figures.home}) + ["failed"]
    row = {name: i for i, name in enumerate(lanes)}
    fig = Figure(figsize=(11, 5.5), dpi=100)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.3]})
    e = figures.events
    for ax in (top, bottom):
        ax.axvspan(e.injecting, e.recovering, color="#ffcc80", alpha=0.35, label="fault window")
        ax.axvline(e.injected, color="#e65100", lw=1, ls="--", label="fault in place")
        ax.axvline(e.recovered, color="#6d4c41", lw=1, ls="--", label="fault removed")
        if figures.time_to_failover_s is not None:
            ax.axvline(e.injected + figures.time_to_failover_s, color=_REMOTE, lw=1, ls=":", label="failover")
        if figures.time_to_failback_s is not None:
            ax.axvline(e.failback_origin + figures.time_to_failback_s, color=_OK, lw=1, ls=":", label="failback")
    for outcome, colour, pick in (
        (f"served by {figures.home}", _OK, lambda s: s.ok and s.cluster == figures.home),
        ("served elsewhere", _REMOTE, lambda s: s.ok and s.cluster != figures.home),
        ("failed", _FAILED, lambda s: not s.ok),
    ):
        chosen = [s for s in samples if pick(s)]
        if not chosen:
            continue
        top.scatter([s.t for s in chosen], [row["failed" if not s.ok else (s.cluster or "failed")] for s in chosen], s=9,
                    color=colour, label=outcome)
        bottom.scatter([s.t for s in chosen], [max(s.latency_s * 1000, 0.1) for s in chosen], s=7, color=colour)
    top.set_yticks(range(len(lanes)), lanes)
    top.set_ylim(-0.6, len(lanes) - 0.4)
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    kinds = sorted({error_kind(s) for s in samples if not s.ok})
    if kinds:
        top.text(1.01, -0.2, "failures:\n" + "\n".join(kinds[:8]), transform=top.transAxes, fontsize=7, va="top")
    bottom.set_yscale("log")
    bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since the load began")
    bottom.grid(True, which="major", alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.8, top=0.93, bottom=0.1, hspace=0.08)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
