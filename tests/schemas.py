"""Offline validation of the project's manifests against the real upstream schemas.

The schemas are shipped beside the repository, in ``shared/schemas`` (see ``schemas_root``):

* ``istio-<v>/crd-all.gen.yaml`` and ``chaos-mesh-<v>/crd.yaml``: CustomResourceDefinitions. Their
  ``openAPIV3Schema`` (OpenAPI v3 with Kubernetes extensions) is converted by ``crd_to_jsonschema``
  into a JSON Schema (draft 2020-12) that behaves like the API server with kubectl's default
  strict field validation: unknown fields fail wherever the CRD does not preserve them;
* ``istio-<v>/gateway.values.schema.json``: the istio/gateway chart's values schema, as Helm uses it;
* ``istio-<v>/*.values.yaml`` and ``chaos-mesh-<v>/values.yaml``: chart defaults. Charts without a
  values schema silently ignore a misspelt key, so ``unknown_value_paths`` reports every key path
  of an override that the chart's defaults do not have.

Built-in Kubernetes kinds are validated with the ``kubernetes-validate`` package (strict schemas),
which ships the Kubernetes OpenAPI schemas; see ``CoreSchemas``.

Nothing here imports pytest: the test module decides what is a skip and what is a failure.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import importlib.resources
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ISTIO = "istio-1.30.3"
CHAOS_MESH = "chaos-mesh-2.8.3"
ISTIO_CRDS = f"{ISTIO}/crd-all.gen.yaml"
CHAOS_MESH_CRDS = f"{CHAOS_MESH}/crd.yaml"
CRD_FILES = (ISTIO_CRDS, CHAOS_MESH_CRDS)

# The oldest Kubernetes whose schemas are acceptable for core kinds; the newest one shipped is used.
MIN_KUBERNETES = "1.30"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def schemas_root() -> Path:
    """``shared/schemas``, beside the repository this file is in."""
    return Path(__file__).resolve().parents[1].parent / "shared" / "schemas"


def split_api_version(api_version: str) -> tuple[str, str]:
    """``networking.istio.io/v1`` -> (``networking.istio.io``, ``v1``); ``v1`` -> (``""``, ``v1``)."""
    group, _, version = str(api_version).rpartition("/")
    return group, version


def is_builtin_group(group: str) -> bool:
    """Whether an API group is served by Kubernetes itself (``""``, ``apps``, ``*.k8s.io``)."""
    return "." not in group or group.endswith(".k8s.io")


# --------------------------------------------------------------------------------------------
# Error reporting


def _path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _message(error: ValidationError, limit: int = 300) -> str:
    msg = error.message
    if error.context:  # anyOf / oneOf: say why the closest branch failed as well
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None and best.message != msg:
            msg = f"{msg} (closest: {_path(best)}: {best.message})"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def error_lines(errors: Iterable[ValidationError]) -> list[str]:
    """``path: message`` lines, sorted by path, e.g. ``spec.servers[0].port.number: 'x' is not of type 'integer'``."""
    return sorted({f"{_path(e)}: {_message(e)}" for e in errors})


# --------------------------------------------------------------------------------------------
# Kubernetes object metadata


DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"^({_QUALIFIED_NAME})?$"
# prefix (a DNS subdomain of at most 253) "/" name (at most 63): checked for length by _label_key below
_LABEL_KEY = rf"^({DNS1123_SUBDOMAIN}/)?{_QUALIFIED_NAME}$"

# ObjectMeta as the API server takes it on create/apply: known fields only (kubectl's strict field
# validation rejects others), name required (``kubectl apply`` needs it), names, namespaces, label
# keys and values in the formats the API server enforces for every kind.
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": rf"^{DNS1123_SUBDOMAIN}$"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": rf"^{DNS1123_LABEL}$"},
        "labels": {
            "type": "object",
            "propertyNames": {"pattern": _LABEL_KEY, "x-label-key": True},
            "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE},
        },
        "annotations": {
            "type": "object",
            "propertyNames": {"pattern": _LABEL_KEY, "x-label-key": True},
            "additionalProperties": {"type": "string"},
        },
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": {"type": "string"},
    },
}


def _label_key(validator, enabled, instance, schema):  # noqa: ARG001 - jsonschema keyword signature
    if enabled and isinstance(instance, str) and "/" in instance:
        prefix, _, name = instance.partition("/")
        if len(prefix) > 253:
            yield ValidationError(f"{instance!r}: the prefix of a label or annotation key is at most 253 characters")
        if len(name) > 63:
            yield ValidationError(f"{instance!r}: the name of a label or annotation key is at most 63 characters")
    elif enabled and isinstance(instance, str) and len(instance) > 63:
        yield ValidationError(f"{instance!r}: a label or annotation key is at most 63 characters")


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


def _list_map_keys(validator, keys, instance, schema):  # noqa: ARG001 - jsonschema keyword signature
    if not validator.is_type(instance, "array"):
        return
    seen: dict[str, int] = {}
    for i, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = json.dumps([item.get(k) for k in keys], sort_keys=True, default=str)
        if key in seen:
            yield ValidationError(
                f"items {seen[key]} and {i} have the same key ({', '.join(f'{k}={item.get(k)!r}' for k in keys)}); "
                "this list is a map keyed by " + ", ".join(keys)
            )
        else:
            seen[key] = i


def _check_byte(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in value.upper()


FORMAT_CHECKER = jsonschema.FormatChecker(formats=())
FORMAT_CHECKER.checks("byte")(_check_byte)
FORMAT_CHECKER.checks("date-time")(_check_date_time)

# Draft 2020-12 plus the two Kubernetes checks JSON Schema has no keyword for.
KubernetesValidator = jsonschema.validators.extend(
    Draft202012Validator,
    {"x-kubernetes-list-map-keys": _list_map_keys, "x-label-key": _label_key},
)


def object_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    return KubernetesValidator(schema, format_checker=FORMAT_CHECKER)


@functools.lru_cache(maxsize=1)
def metadata_validator() -> jsonschema.protocols.Validator:
    """Checks ``{"metadata": ...}`` of any object (the API server's checks shared by every kind)."""
    return object_validator({"type": "object", "required": ["metadata"], "properties": {"metadata": OBJECT_META}})


def metadata_errors(body: dict[str, Any]) -> list[str]:
    return error_lines(metadata_validator().iter_errors({"metadata": body.get("metadata")}))


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


def _load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.load_all(path.read_text(), Loader=_Loader) if d is not None]


def load_crds(path: Path) -> list[CrdVersion]:
    """Every version of every CustomResourceDefinition in a multi-document YAML file."""
    out = []
    for doc in _load_yaml_all(path):
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


# --------------------------------------------------------------------------------------------
# Helm charts: values schema and defaults


@dataclass(frozen=True)
class Chart:
    name: str
    defaults: str  # path under schemas_root()
    schema: str | None = None  # values.schema.json, when the chart has one
    # Key paths (dotted) below which the chart passes values through without a fixed set of keys.
    pass_through: tuple[str, ...] = ()


CHARTS = {
    "istiod": Chart(
        "istiod",
        f"{ISTIO}/istiod.values.yaml",
        # meshConfig is Istio's MeshConfig, copied verbatim into the mesh ConfigMap: the chart's
        # defaults list only one of its fields, so its keys cannot be checked against them.
        pass_through=("meshConfig",),
    ),
    "gateway": Chart(
        "gateway",
        f"{ISTIO}/gateway.values.yaml",
        f"{ISTIO}/gateway.values.schema.json",
        pass_through=("networkGatewayPorts",),
    ),
    "base": Chart("base", f"{ISTIO}/base.values.yaml"),
    "chaos-mesh": Chart("chaos-mesh", f"{CHAOS_MESH}/values.yaml"),
}

# Keys whose value is a map with free keys in every chart (Kubernetes labels, env, resources, ...).
GENERIC_MAP_KEYS = frozenset(
    {
        "labels",
        "annotations",
        "podAnnotations",
        "podLabels",
        "selectorLabels",
        "nodeSelector",
        "env",
        "limits",
        "requests",
        "affinity",
        "securityContext",
        "containerSecurityContext",
        "seccompProfile",
    }
)


def chart_for_values_file(name: str) -> Chart | None:
    """The chart a ``*.values.yaml`` file of manifests/ is for, by its name: one with ``istiod``,
    ``gateway`` (the istio/gateway chart) or ``chaos-mesh`` in it, or ``base.values.yaml``; else None."""
    stem = Path(name).name.removesuffix(".values.yaml").removesuffix(".values.yml")
    for chart in ("istiod", "gateway", "chaos-mesh"):
        if chart in stem:
            return CHARTS[chart]
    return CHARTS.get(stem)


INTERNAL_DEFAULTS = "_internal_defaults_do_not_set"


def chart_defaults(path: Path) -> dict[str, Any]:
    """A chart's default values. Istio charts nest them under ``_internal_defaults_do_not_set``
    (a Helm workaround: users set the keys at the top level), which is unwrapped here."""
    raw = yaml.load(path.read_text(), Loader=_Loader) or {}
    if isinstance(raw.get(INTERNAL_DEFAULTS), dict):
        inner = dict(raw[INTERNAL_DEFAULTS])
        inner.update({k: v for k, v in raw.items() if k != INTERNAL_DEFAULTS})
        return inner
    return raw


def unknown_value_paths(values: dict[str, Any], defaults: dict[str, Any], pass_through: Iterable[str] = ()) -> list[str]:
    """Key paths set in ``values`` that the chart's ``defaults`` do not have, one line each.

    Helm merges an override into the defaults and templates read only the keys they know, so a
    misspelt key (``global.meshId``) is silently ignored. Below a key whose default is an empty map
    or null, a generic map key (``GENERIC_MAP_KEYS``) or a ``pass_through`` path, any key is allowed.
    A map given where the default is a scalar or a list, or the reverse, is reported as well.
    """
    free = set(pass_through)
    problems: list[str] = []

    def walk(value: dict[str, Any], default: dict[str, Any], path: str) -> None:
        for key, sub in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in default:
                hint = " (set the keys at the top level instead)" if key == INTERNAL_DEFAULTS else ""
                close = [k for k in default if str(k).lower() == str(key).lower()]
                if close:
                    hint = f" (did you mean {'.'.join([*filter(None, [path]), str(close[0])])}?)"
                problems.append(f"{where}: not a value of the chart{hint}")
                continue
            base = default[key]
            if base is None or where in free or key in GENERIC_MAP_KEYS:
                continue
            if isinstance(base, dict):
                if sub is None:
                    continue
                if not isinstance(sub, dict):
                    problems.append(f"{where}: the chart expects a map here, got {type(sub).__name__}")
                elif base:
                    walk(sub, base, where)
            elif isinstance(sub, dict):
                problems.append(f"{where}: the chart expects a {type(base).__name__} here, got a map")

    walk(values, defaults, "")
    return problems


@functools.cache
def _chart_defaults_cached(path: Path) -> dict[str, Any]:
    return chart_defaults(path)


@functools.cache
def values_validator(path: Path) -> jsonschema.protocols.Validator:
    """A validator for a chart's ``values.schema.json`` (Helm validates values with it before
    rendering). The Istio charts' ``$schema`` (``http://json-schema.org/schema#``) names no draft;
    draft 2020-12 is what Helm 3.18+ assumes then, and it reads this schema as older drafts would."""
    return Draft202012Validator(json.loads(path.read_text()))


def chart_values_errors(root: Path, chart: Chart, values: dict[str, Any]) -> list[str]:
    """Everything wrong with a values override for ``chart``: schema violations and unknown keys."""
    problems: list[str] = []
    if chart.schema:
        problems += error_lines(values_validator(root / chart.schema).iter_errors(values))
    problems += unknown_value_paths(values, _chart_defaults_cached(root / chart.defaults), chart.pass_through)
    return problems
