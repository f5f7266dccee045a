"""Helm charts: a values override checked against the chart's values schema and its defaults.

The istio/gateway chart ships ``values.schema.json`` (Helm validates with it before rendering);
every other chart here silently ignores a misspelt key, so ``unknown_value_paths`` reports every
key path of an override that the chart's defaults (``*.values.yaml`` in the schemas folder) lack."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from eastwest.schemas.common import error_lines, load_yaml
from eastwest.schemas.crd import CHAOS_MESH, ISTIO

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
    raw = load_yaml(path) or {}
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
