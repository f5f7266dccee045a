"""External commands (docker, kind, helm, kubectl): typed, shown in the plan, run with an explicit environment.

A :class:`Command` is what the plan prints and what the bring-up runs: the same object. A
:class:`Runner` runs it; :class:`Subprocess` is the real one, and self-tests pass a recording
stand-in. Commands never inherit the caller's environment wholesale: only ``PATH``, ``HOME`` and
the variables that point docker at its daemon pass through, plus what the command sets itself
(``KIND_EXPERIMENTAL_DOCKER_NETWORK``, Helm's own folders, ``KUBECONFIG``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from eastwest.support.errors import MeshError

#: variables a command may take from the caller's environment (docker's daemon address and config)
PASSED_THROUGH = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                  "XDG_RUNTIME_DIR")


class CommandFailed(MeshError):
    """A command exited with a status it may not; the message has its last lines of output."""


@dataclass(frozen=True)
class Command:
    """One external command: arguments, the environment it sets, its time limit and what it is for."""

    argv: tuple[str, ...]
    what: str
    timeout: float = 60.0
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: bytes | None = field(default=None, repr=False)
    #: how the plan shows stdin (``< echo build context``), when there is one
    stdin_note: str = ""
    ok_codes: tuple[int, ...] = (0,)

    def shell(self) -> str:
        """The command as a shell line (for the plan and for error messages)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        line = " ".join(shlex.quote(a) for a in self.argv)
        stdin = f" < {self.stdin_note}" if self.stdin_note else ""
        return f"{env + ' ' if env else ''}{line}{stdin}"


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs commands; the bring-up only ever talks to one of these."""

    def run(self, cmd: Command) -> Completed: ...


def check(cmd: Command, done: Completed) -> Completed:
    """Raise CommandFailed unless the exit status is one the command allows."""
    if done.returncode not in cmd.ok_codes:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise CommandFailed(f"{cmd.what} failed (exit {done.returncode}): {cmd.shell()}\n{tail}")
    return done


class Subprocess:
    """Runs commands with subprocess, the explicit environment and a time limit each."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        source = os.environ if environ is None else environ
        self.base = {k: source[k] for k in PASSED_THROUGH if k in source}

    def run(self, cmd: Command) -> Completed:
        try:
            done = subprocess.run(list(cmd.argv), input=cmd.stdin, capture_output=True, timeout=cmd.timeout,
                                  env={**self.base, **cmd.env}, check=False)
        except FileNotFoundError:
            raise CommandFailed(f"{cmd.what}: {cmd.argv[0]} is not installed (not on PATH)") from None
        except subprocess.TimeoutExpired:
            raise CommandFailed(f"{cmd.what}: no result within {cmd.timeout:g}s: {cmd.shell()}") from None
        return Completed(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


class Progress:
    """Progress lines with the time since the bring-up started, and a heartbeat on long steps."""

    def __init__(self, out: TextIO | None = None, *, heartbeat: float = 20.0, clock: Callable[[], float] = time.monotonic):
        self.out = out or sys.stderr
        self.clock = clock
        self.t0 = clock()
        self.heartbeat = heartbeat

    def say(self, text: str) -> None:
        self.out.write(f"[{self.clock() - self.t0:7.1f}s] {text}\n")
        self.out.flush()

    def step(self, text: str) -> _Step:
        """``with progress.step("creating clusters"):`` says when it starts, is still going, and ends."""
        return _Step(self, text)


class _Step:
    def __init__(self, progress: Progress, text: str):
        self.progress, self.text = progress, text
        self._stop = threading.Event()

    def __enter__(self) -> _Step:
        self.started = self.progress.clock()
        self.progress.say(f"{self.text} ...")
        if self.progress.heartbeat > 0:
            threading.Thread(target=self._beat, daemon=True).start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.progress.heartbeat):
            self.progress.say(f"  still {self.text} ({self.progress.clock() - self.started:.0f}s)")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        took = self.progress.clock() - self.started
        self.progress.say(f"{self.text}: {'done' if exc_type is None else 'FAILED'} in {took:.1f}s")
