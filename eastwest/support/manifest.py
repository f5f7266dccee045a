"""Loading manifests: YAML files under ``manifests/`` rendered per cluster.

A manifest may use ``${VARIABLE}`` placeholders (see ``Topology.variables``: ``CLUSTER``,
``NETWORK``, ``REGION``, ``ZONE``, ``MESH_ID``, ``TRUST_DOMAIN``, ``GATEWAY_ADDRESS`` and
``<CLUSTER>_GATEWAY_ADDRESS`` for every cluster). A document annotated
``eastwest.io/clusters: "eu"`` is applied only to the clusters it lists; the others go to
every cluster. Both backends load manifests through this module, so they apply the same objects.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eastwest.support.errors import ManifestError

CLUSTERS_ANNOTATION = "eastwest.io/clusters"


class _Braced(string.Template):
    # only ${NAME} (upper case) is a placeholder, so a literal '$' in a manifest stays as it is:
    # '$HOME', '$$' (shell PID, Kubernetes' own '$$(VAR)' escape) and '${lower}' pass through
    # untouched. string.Template matches case-insensitively and turns '$$' into '$' unless told not to.
    flags = re.RegexFlag(0)
    pattern = r"\$(?:\{(?P<braced>[A-Z_][A-Z0-9_]*)\}|(?P<escaped>(?!))|(?P<named>(?!))|(?P<invalid>(?!)))"  # type: ignore[assignment]  # compiled by Template's metaclass


@dataclass(frozen=True)
class Document:
    """One Kubernetes or Istio object, rendered, with where it came from."""

    body: dict[str, Any]
    source: str

    @property
    def kind(self) -> str:
        return str(self.body.get("kind"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name"))

    @property
    def namespace(self) -> str | None:
        ns = self.body.get("metadata", {}).get("namespace")
        return str(ns) if ns is not None else None

    @property
    def ref(self) -> str:
        """``Kind namespace/name (file)``, for messages."""
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name} ({self.source})"

    def target_clusters(self) -> list[str] | None:
        """The clusters named by the ``eastwest.io/clusters`` annotation, or None (every cluster)."""
        annotations = self.body.get("metadata", {}).get("annotations") or {}
        wanted = annotations.get(CLUSTERS_ANNOTATION)
        return None if wanted is None else [c.strip() for c in str(wanted).split(",")]

    def targets(self, cluster: str) -> bool:
        """Whether this document is applied to ``cluster``."""
        wanted = self.target_clusters()
        return wanted is None or cluster in wanted


def render(text: str, variables: dict[str, str], source: str) -> str:
    """Substitute ``${VARIABLE}`` placeholders; an unknown one is a ManifestError naming it."""
    try:
        return _Braced(text).substitute(variables)
    except KeyError as exc:
        known = ", ".join(sorted(variables))
        raise ManifestError(f"{source}: unknown variable ${{{exc.args[0]}}}; known variables: {known}") from None


def parse(text: str, source: str) -> list[Document]:
    """Parse rendered YAML into documents, checking each has apiVersion, kind and metadata.name."""
    try:
        raw_docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ManifestError(f"{source}{where}: not valid YAML: {problem}") from None
    docs = []
    for i, body in enumerate(raw_docs):
        where = f"{source} (document {i + 1})"
        if not isinstance(body, dict):
            raise ManifestError(f"{where}: expected a Kubernetes object, got {type(body).__name__}")
        for key in ("apiVersion", "kind"):
            if not body.get(key):
                raise ManifestError(f"{where}: missing '{key}'")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ManifestError(f"{where}: {body['kind']} metadata must be a mapping, got {type(metadata).__name__}")
        if not metadata.get("name"):
            raise ManifestError(f"{where}: {body['kind']} without metadata.name")
        docs.append(Document(body, source))
    return docs


def load(path: Path, variables: dict[str, str], *, root: Path | None = None) -> list[Document]:
    """Read, render and parse one manifest file."""
    source = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"manifest not found: {source}") from None
    return parse(render(text, variables, source), source)


def resolve(root: Path, name: str) -> Path:
    """A manifest path: absolute, or relative to ``root`` (the manifests folder)."""
    path = Path(name)
    return path if path.is_absolute() else root / path


_VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def placeholders(text: str) -> set[str]:
    """The variable names a manifest text uses."""
    return set(_VAR.findall(text))
