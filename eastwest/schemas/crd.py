"""CustomResourceDefinitions as validators: Istio, Chaos Mesh and MetalLB objects checked like the API server would.

``crd_to_jsonschema`` turns a CRD's ``openAPIV3Schema`` (OpenAPI v3 with Kubernetes extensions) into
JSON Schema (draft 2020-12) that behaves like the API server with kubectl's default strict field
validation: unknown fields fail wherever the CRD does not preserve them. ``crd_catalog`` loads the
CRD files shipped in the schemas folder (``eastwest.schemas.schemas_root``)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from eastwest.schemas.common import OBJECT_META, error_lines, load_yaml_all, object_validator, split_api_version

ISTIO = "istio-1.30.3"
CHAOS_MESH = "chaos-mesh-2.8.3"
METALLB = "metallb-0.16.1"
ISTIO_CRDS = f"{ISTIO}/crd-all.gen.yaml"
CHAOS_MESH_CRDS = f"{CHAOS_MESH}/crd.yaml"
METALLB_CRDS = (f"{METALLB}/metallb.io_ipaddresspools.yaml", f"{METALLB}/metallb.io_l2advertisements.yaml")
CRD_FILES = (ISTIO_CRDS, CHAOS_MESH_CRDS, *METALLB_CRDS)


# --------------------------------------------------------------------------------------------
# OpenAPI v3 (Kubernetes structural schema) -> JSON Schema


# Keywords that only document or only matter to the API server's defaulting and CEL.
_DROPPED = {
    "description",
    "example",
    "externalDocs",
    "default",
    "nullable",
    "format",  # handled below
    "x-kubernetes-validations",  # CEL rules: not evaluated here
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
}
# The string formats the API server checks on custom resources that matter in manifests here.
_FORMATS = ("byte", "date-time")


def crd_to_jsonschema(node: dict[str, Any], *, structural: bool = True) -> dict[str, Any]:
    """Convert one OpenAPI v3 schema node of a CRD into JSON Schema (draft 2020-12).

    * ``nullable: true`` adds ``null`` to the type (and the enum);
    * ``x-kubernetes-int-or-string: true`` allows an integer or a string;
    * an object node with neither ``additionalProperties`` nor
      ``x-kubernetes-preserve-unknown-fields: true`` gets ``additionalProperties: false``: the API
      server prunes unknown fields there, and kubectl's strict field validation makes that an error;
    * ``x-kubernetes-list-type: set`` -> ``uniqueItems``; ``map`` -> unique ``x-kubernetes-list-map-keys``;
    * OpenAPI's boolean ``exclusiveMinimum``/``exclusiveMaximum`` become JSON Schema's numeric ones;
    * CEL rules (``x-kubernetes-validations``) are ignored.

    Subschemas of ``allOf``/``anyOf``/``oneOf``/``not`` only add value validations in a structural
    schema (they cannot declare fields), so no ``additionalProperties: false`` is added inside them.
    """
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: crd_to_jsonschema(sub, structural=structural) for name, sub in value.items()}
        elif key == "items":
            out[key] = crd_to_jsonschema(value, structural=structural) if isinstance(value, dict) else value
        elif key == "additionalProperties":
            out[key] = crd_to_jsonschema(value, structural=structural) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [crd_to_jsonschema(sub, structural=False) for sub in value]
        elif key == "not":
            out[key] = crd_to_jsonschema(value, structural=False)
        else:
            out[key] = value

    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            if out.pop(bound) and limit in out:
                out[bound] = out.pop(limit)

    if node.get("format") in _FORMATS:
        out["format"] = node["format"]

    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])

    if node.get("nullable"):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*types, "null"] if "null" not in types else types
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]

    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out["uniqueItems"] = True
    elif list_type == "map" and node.get("x-kubernetes-list-map-keys"):
        out["x-kubernetes-list-map-keys"] = list(node["x-kubernetes-list-map-keys"])

    is_object = node.get("type") == "object" or "properties" in node
    if (
        structural
        and is_object
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_root_schema(openapi: dict[str, Any], group: str, version: str, kind: str) -> dict[str, Any]:
    """The JSON Schema of a whole custom resource: the converted CRD schema plus the fields every
    object has (``apiVersion`` and ``kind`` fixed to this CRD's, ``metadata`` as ``OBJECT_META``)."""
    schema = crd_to_jsonschema(openapi)
    properties = dict(schema.get("properties") or {})
    properties["apiVersion"] = {"const": f"{group}/{version}"}
    properties["kind"] = {"const": kind}
    properties["metadata"] = OBJECT_META
    schema["properties"] = properties
    schema["type"] = "object"
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind", "metadata"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


# --------------------------------------------------------------------------------------------
# CRD catalogue


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    served: bool
    openapi: dict[str, Any]
    source: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


class CrdCatalog:
    """The CRDs of some files; a validator per (apiVersion, kind), converted on first use."""

    def __init__(self, versions: Iterable[CrdVersion]):
        self._versions = {(v.group, v.version, v.kind): v for v in versions}
        self._validators: dict[tuple[str, str, str], jsonschema.protocols.Validator] = {}

    @property
    def groups(self) -> set[str]:
        return {g for g, _, _ in self._versions}

    def __iter__(self) -> Iterator[CrdVersion]:
        return iter(self._versions.values())

    def __len__(self) -> int:
        return len(self._versions)

    def find(self, api_version: str, kind: str) -> CrdVersion | None:
        group, version = split_api_version(api_version)
        return self._versions.get((group, version, kind))

    def served(self, group: str, kind: str) -> list[str]:
        """The apiVersions serving ``kind`` in ``group``, for messages."""
        return sorted(v.api_version for v in self if v.group == group and v.kind == kind and v.served)

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        crd = self.find(api_version, kind)
        if crd is None or not crd.served:
            return None
        key = (crd.group, crd.version, crd.kind)
        if key not in self._validators:
            self._validators[key] = object_validator(crd_root_schema(crd.openapi, *key))
        return self._validators[key]

    def errors(self, body: dict[str, Any]) -> list[str]:
        """Why the API server would reject ``body``; a kind no CRD here serves is one error."""
        api_version, kind = str(body.get("apiVersion")), str(body.get("kind"))
        validator = self.validator(api_version, kind)
        if validator is None:
            group, _ = split_api_version(api_version)
            served = self.served(group, kind)
            hint = f"; {kind} is served as {', '.join(served)}" if served else ""
            return [f"no served CRD for {kind} in {api_version}{hint}"]
        return error_lines(validator.iter_errors(body))


def load_crds(path: Path) -> list[CrdVersion]:
    """Every version of every CustomResourceDefinition in a multi-document YAML file."""
    out = []
    for doc in load_yaml_all(path):
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        for v in spec.get("versions") or ():
            openapi = ((v.get("schema") or {}).get("openAPIV3Schema")) or (spec.get("validation") or {}).get("openAPIV3Schema")
            if openapi is None:
                raise ValueError(f"{path}: {spec['names']['kind']} {v['name']} has no openAPIV3Schema")
            out.append(
                CrdVersion(
                    group=spec["group"],
                    version=v["name"],
                    kind=spec["names"]["kind"],
                    served=bool(v.get("served", True)),
                    openapi=openapi,
                    source=path.name,
                )
            )
    return out


@functools.cache
def crd_catalog(root: Path, names: tuple[str, ...] = CRD_FILES) -> CrdCatalog:
    """The CRDs of the files ``names`` under ``root`` that exist (cached per process)."""
    versions: list[CrdVersion] = []
    for name in names:
        if (root / name).is_file():
            versions += load_crds(root / name)
    return CrdCatalog(versions)


