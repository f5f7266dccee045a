"""``eastwest``: command-line tooling. Each backend adds its own commands (``eastwest lab up``)."""

from __future__ import annotations

import argparse
import logging
import sys

from eastwest.backends import registry
from eastwest.support.errors import MeshError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eastwest", description="eastwest: Istio multi-network conformance tooling")
    commands = p.add_subparsers(dest="command", required=True)
    for backend in registry().values():
        backend.add_commands(commands)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return int(args.run(args))
    except MeshError as exc:
        print(f"eastwest: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"eastwest: {exc.args[0]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
