"""The tools preflight: every missing or unfit tool of the kind road, named in one message with how to get it."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable

from eastwest.backends.kube import pins
from eastwest.backends.kube.commands import Command, CommandFailed, Runner

# how each tool says its version; the first group of digits found is compared with the pin
_VERSION_COMMANDS = {
    "docker": ("docker", "--version"),
    "kind": ("kind", "version"),
    "helm": ("helm", "version", "--short"),
    "kubectl": ("kubectl", "version", "--client", "--output", "json"),
}


def parse_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def _kubectl_version(text: str) -> str:
    try:
        return str(json.loads(text)["clientVersion"]["gitVersion"])
    except (ValueError, KeyError, TypeError):
        return text


def problems(runner: Runner, *, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """One line per tool that is missing, too old, too new, or (docker) has no daemon to talk to."""
    out = []
    for pin in pins.TOOLS:
        if not which(pin.name):
            out.append(f"{pin.name}: not found on PATH (need {pin.describe()}): {pin.how}")
            continue
        try:
            done = runner.run(Command(_VERSION_COMMANDS[pin.name], f"{pin.name} version", timeout=20))
        except CommandFailed as exc:
            out.append(f"{pin.name}: cannot tell its version ({exc}): {pin.how}")
            continue
        text = _kubectl_version(done.stdout) if pin.name == "kubectl" else done.stdout
        version = parse_version(text) if done.returncode == 0 else None
        found = "v" + ".".join(map(str, version)) if version else "unknown"
        if version is None:
            out.append(f"{pin.name}: cannot tell its version ({(done.stderr or done.stdout).strip()[:120]}): {pin.how}")
        elif pin.exact and parse_version(pin.exact) != version[:3]:
            out.append(f"{pin.name}: found {found}, need exactly {pin.exact} (its node image is pinned with it): {pin.how}")
        elif version[: len(pin.minimum)] < pin.minimum or (pin.below and version[: len(pin.below)] >= pin.below):
            out.append(f"{pin.name}: found {found}, need {pin.describe()}: {pin.how}")
        if pin.name == "docker":
            daemon = runner.run(Command(("docker", "info", "--format", "{{.ServerVersion}}"), "docker daemon", timeout=20))
            if daemon.returncode != 0 or not daemon.stdout.strip():
                why = (daemon.stderr or daemon.stdout).strip().splitlines()
                out.append(f"docker: the daemon does not answer ({why[-1] if why else 'no answer'}): start it (systemctl start docker), "
                           "or point DOCKER_HOST at one")
    return out
