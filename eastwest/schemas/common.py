"""What every validation here shares: error lines, the API server's metadata rules, and a
JSON Schema validator with the two Kubernetes checks JSON Schema has no keyword for."""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_all(path: Path) -> list[Any]:
    """Every non-empty document of a YAML file (the C loader where PyYAML has it: CRD files are large)."""
    return [d for d in yaml.load_all(path.read_text(), Loader=_Loader) if d is not None]


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=_Loader)


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


