"""Built-in Kubernetes kinds (Namespace, Secret, Deployment, ...) validated with the strict
OpenAPI schemas the ``kubernetes-validate`` package ships (additionalProperties false everywhere)."""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from typing import Any

import jsonschema

from eastwest.schemas.common import FORMAT_CHECKER, KubernetesValidator, error_lines, split_api_version

# The oldest Kubernetes whose schemas are acceptable for core kinds; the newest one shipped is used.
MIN_KUBERNETES = "1.30"


# --------------------------------------------------------------------------------------------
# Built-in kinds: kubernetes-validate


class CoreSchemasUnavailable(Exception):
    """kubernetes-validate is missing or has no usable schemas; the message says why."""


class CoreSchemas:
    """Strict Kubernetes OpenAPI schemas (additionalProperties false) shipped by kubernetes-validate,
    for the newest Kubernetes it has; validators cached per (apiVersion, kind)."""

    def __init__(self) -> None:
        try:
            from kubernetes_validate import utils as kv
            from referencing import Registry, Resource
        except ImportError as exc:
            raise CoreSchemasUnavailable(
                f"kubernetes-validate is not installed ({exc}); install the project's test extra: pip install -e '.[test]'"
            ) from None
        self.version = kv.latest_version()
        if _version_key(self.version) < _version_key(MIN_KUBERNETES):
            raise CoreSchemasUnavailable(f"kubernetes-validate ships schemas up to Kubernetes {self.version}; need {MIN_KUBERNETES}+")
        self._dir = importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{self.version}-local-strict"
        try:
            definitions = json.loads((self._dir / "_definitions.json").read_text())
        except (OSError, ValueError) as exc:
            raise CoreSchemasUnavailable(f"kubernetes-validate's schemas for {self.version} are unreadable: {exc}") from None
        self._resource = Resource
        self._registry = Resource.from_contents(definitions) @ Registry()
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator | None] = {}

    @property
    def kubernetes(self) -> str:
        """``major.minor`` of the Kubernetes whose schemas are used."""
        return ".".join(self.version.split(".")[:2])

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            group, version = split_api_version(api_version)
            # kubernetes-validate's file names: <kind>-<first label of the group>-<version>.json
            prefix = f"{group.split('.')[0]}-" if group else ""
            path = self._dir / f"{kind.lower()}-{prefix}{version}.json"
            try:
                schema = json.loads(path.read_text())
            except FileNotFoundError:
                self._validators[key] = None
            else:
                registry = self._resource.from_contents(schema) @ self._registry
                self._validators[key] = KubernetesValidator(schema, registry=registry, format_checker=FORMAT_CHECKER)
        return self._validators[key]

    def errors(self, body: dict[str, Any]) -> list[str]:
        api_version, kind = str(body.get("apiVersion")), str(body.get("kind"))
        validator = self.validator(api_version, kind)
        if validator is None:
            return [f"Kubernetes {self.kubernetes} serves no {kind} in {api_version}"]
        return error_lines(validator.iter_errors(body))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


@functools.lru_cache(maxsize=1)
def core_schemas() -> CoreSchemas:
    """The process's CoreSchemas; raises CoreSchemasUnavailable (not cached: retried, cheap)."""
    return CoreSchemas()


