"""``eastwest lab``: run the lab by hand, the way ``kind create cluster`` runs clusters.

    eastwest lab up [--name NAME]          bring the two-cluster lab up and leave it running
    eastwest lab status [--name NAME]      clusters, gateways and pods
    eastwest lab call --from us/sleep/sleep URL [-n N]
                                           send requests from a pod and print the answers
    eastwest lab down [--name NAME]        tear it down (returns once the name can start again)

Suites run against it with ``pytest suites/ --lab-name NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from eastwest.backends.lab.breaks import BREAKS
from eastwest.backends.lab.mesh import LabMesh
from eastwest.settings import Timeouts
from eastwest.support.errors import ConfigError
from eastwest.workloads import ECHO_URL, GATEWAY_PORT, SLEEP

DEFAULT_NAME = "default"
PROJECT = Path(__file__).resolve().parents[3]


def _up(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    print(f"lab {args.name}: starting supervisor ...", flush=True)
    mesh = LabMesh(args.manifests, name=args.name, breaks=frozenset(args.lab_break), detach=True)
    print(f"lab {args.name}: installing Istio, east-west gateways, echo and sleep ...", flush=True)
    mesh.install()
    for cluster in mesh.clusters.values():
        print(f"  {cluster.name}: network {cluster.network}, east-west gateway {cluster.gateway_address()}:{GATEWAY_PORT}")
    print(f"lab {args.name}: up in {time.monotonic() - t0:.1f}s")
    print(f"  try:  eastwest lab call --name {args.name} --from us/{SLEEP} {ECHO_URL} -n 4")
    print(f"  run:  pytest suites/ --lab-name {args.name}")
    print(f"  stop: eastwest lab down --name {args.name}")
    mesh.conn.close()
    return 0


def _attach(args: argparse.Namespace) -> LabMesh:
    return LabMesh(args.manifests, name=args.name, attach=True)


def _down(args: argparse.Namespace) -> int:
    _attach(args).shutdown()
    print(f"lab {args.name}: stopped")
    return 0


def _status(args: argparse.Namespace) -> int:
    print(json.dumps(dataclasses.asdict(_attach(args).status()), indent=2))
    return 0


def _call(args: argparse.Namespace) -> int:
    cluster, sep, workload = args.source.partition("/")
    if not sep or workload.count("/") != 1:
        raise ConfigError(f"--from must be CLUSTER/NAMESPACE/WORKLOAD (e.g. us/sleep/sleep), got {args.source!r}")
    responses = _attach(args).cluster(cluster).call(workload, args.url, count=args.n, timeout=args.timeout)
    for r in responses:
        print(json.dumps(r.to_dict()) if args.json else r.summary())
    return 0 if all(r.ok for r in responses) else 1


def add_commands(commands: argparse._SubParsersAction) -> None:
    lab = commands.add_parser("lab", help="the embedded two-network lab").add_subparsers(dest="action", required=True)

    def common(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--name", default=DEFAULT_NAME, help=f"lab name (default {DEFAULT_NAME})")
        sp.add_argument("--manifests", type=Path, default=PROJECT / "manifests", help="manifests folder")
        return sp

    up = common(lab.add_parser("up", help="bring a lab up and leave it running"))
    up.add_argument("--lab-break", "--lab-fault", action="append", default=[], choices=sorted(BREAKS), help="break the lab on purpose")
    up.set_defaults(run=_up)
    common(lab.add_parser("down", help="tear a lab down")).set_defaults(run=_down)
    common(lab.add_parser("status", help="show a lab's clusters and pods")).set_defaults(run=_status)
    call = common(lab.add_parser("call", help="send requests from a pod"))
    call.add_argument("--from", dest="source", required=True, metavar="CLUSTER/NS/WORKLOAD")
    call.add_argument("url")
    call.add_argument("-n", type=int, default=1, help="number of requests")
    call.add_argument("--timeout", type=float, default=Timeouts().request, help="seconds per request")
    call.add_argument("--json", action="store_true", help="one JSON object per response")
    call.set_defaults(run=_call)
