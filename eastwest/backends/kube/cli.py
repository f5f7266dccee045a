"""``eastwest kind`` and ``eastwest existing``: the Kubernetes roads by hand.

    eastwest kind plan [--name NAME]      the ordered bring-up (every command and object); needs no Docker
    eastwest kind up [--name NAME]        bring the clusters up and leave them running (idempotent)
    eastwest kind status [--name NAME]    which clusters exist, and what of the readiness gate fails
    eastwest kind down [--name NAME]      remove the clusters, the docker networks and the state of NAME
    eastwest existing check --context-us CTX --context-eu CTX
                                          the existing backend's preflight, without deploying anything
    eastwest existing echo-context        the echo image's build context, for `| docker build -t IMAGE -`

Suites run against clusters left up with ``pytest suites/ --mesh kind --kind-name NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eastwest.settings import Settings, Timeouts, parse_timeout_override

if TYPE_CHECKING:
    from eastwest.backends.kube.existing import ExistingMesh
    from eastwest.backends.kube.kind import KindRoad

PROJECT = Path(__file__).resolve().parents[3]


def _settings(args: argparse.Namespace, backend: str) -> Settings:
    timeouts = dataclasses.replace(Timeouts(), **dict(parse_timeout_override(t) for t in args.timeout))
    return Settings(backend=backend, manifests=Path(args.manifests).resolve(), timeouts=timeouts)


def _road(args: argparse.Namespace) -> KindRoad:
    from eastwest.backends.kube.kind import KindRoad

    return KindRoad(_settings(args, "kind"), name=args.name, state=args.state)


def _plan(args: argparse.Namespace) -> int:
    sys.stdout.write(_road(args).plan_text())
    return 0


def _up(args: argparse.Namespace) -> int:
    road = _road(args)
    road.preflight()
    created = road.up(owned_by_run=False)
    road.progress.say(f"kind: {'created' if created else 'ready'}: {', '.join(road.layout.cluster(r) for r in road.topology.names)}")
    print(f"  run:  pytest suites/ --mesh kind --kind-name {args.name}")
    print(f"  stop: eastwest kind down --name {args.name}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _road(args).status()
    print(json.dumps(status, indent=2))
    return 0 if all(status["clusters"].values()) and not status.get("not ready") else 1


def _down(args: argparse.Namespace) -> int:
    _road(args).down()
    print(f"kind {args.name}: removed")
    return 0


def add_kind_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from eastwest.backends.kube.kind import DEFAULT_NAME

    kind = commands.add_parser("kind", help="two kind clusters with Istio multi-network (needs Docker, kind, Helm 3, kubectl)")
    actions = kind.add_subparsers(dest="action", required=True)
    for name, run, text in (("plan", _plan, "print the ordered bring-up; starts nothing"),
                            ("up", _up, "bring the clusters up and leave them running"),
                            ("status", _status, "show the clusters and what of the readiness gate fails"),
                            ("down", _down, "remove the clusters, networks and state of NAME")):
        sp = actions.add_parser(name, help=text)
        sp.add_argument("--name", default=DEFAULT_NAME, help=f"clusters' name (default {DEFAULT_NAME})")
        sp.add_argument("--state", default=None, help="state folder (default $XDG_STATE_HOME/eastwest/kind-NAME)")
        sp.add_argument("--manifests", default=str(PROJECT / "manifests"), help="manifests folder")
        sp.add_argument("--timeout", action="append", default=[], metavar="NAME=SECONDS", help="override a time limit (bring_up=1500)")
        sp.set_defaults(run=run)


def _existing(args: argparse.Namespace) -> ExistingMesh:
    from eastwest.backends.kube.existing import ExistingMesh

    return ExistingMesh(_settings(args, "existing"), {"us": args.context_us, "eu": args.context_eu}, kubeconfig=args.kubeconfig)


def _check(args: argparse.Namespace) -> int:
    for note in _existing(args).preflight():
        print(f"note: {note}")
    print("ok: the clusters are a mesh the suites can test")
    return 0


def _echo_context(args: argparse.Namespace) -> int:
    from eastwest.backends.kube import images

    sys.stdout.buffer.write(images.echo_context())
    return 0


def add_existing_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    existing = commands.add_parser("existing", help="your own two clusters with Istio multi-network")
    actions = existing.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="check the clusters are a mesh the suites can test; deploys nothing")
    check.add_argument("--context-us", required=True, metavar="CTX")
    check.add_argument("--context-eu", required=True, metavar="CTX")
    check.add_argument("--kubeconfig", default=None, metavar="PATH")
    check.add_argument("--manifests", default=str(PROJECT / "manifests"), help="manifests folder")
    check.add_argument("--timeout", action="append", default=[], metavar="NAME=SECONDS", help="override a time limit")
    check.set_defaults(run=_check)
    actions.add_parser("echo-context", help="write the echo image's build context (a tar) to stdout").set_defaults(run=_echo_context)
