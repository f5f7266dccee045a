"""kind's cluster configuration (``kind.x-k8s.io/v1alpha4``) as a strict JSON Schema.

kind ships no schema file: this one is written from the Go types of the pinned kind release
(kubernetes-sigs/kind ``v0.31.0``, ``pkg/apis/config/v1alpha4/types.go``: every field with its yaml
tag, every enum constant). kind loads a config with ``yamlUnmarshalStrict``
(``pkg/internal/apis/config/encoding/load.go``), so an unknown field fails ``kind create cluster``;
``additionalProperties: false`` everywhere mirrors that.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema

from eastwest.schemas.common import error_lines, object_validator

API_VERSION = "kind.x-k8s.io/v1alpha4"
KIND_RELEASE = "v0.31.0"

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

_PATCH_JSON6902 = {
    "type": "object",
    "additionalProperties": False,
    # no omitempty on these tags: kind requires all four
    "required": ["group", "version", "kind", "patch"],
    "properties": {k: {"type": "string"} for k in ("group", "version", "kind", "patch")},
}

_MOUNT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "containerPath": {"type": "string"},
        "hostPath": {"type": "string"},
        "readOnly": {"type": "boolean"},
        "selinuxRelabel": {"type": "boolean"},
        "propagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
    },
}

_PORT_MAPPING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "containerPort": _INT32,
        "hostPort": _INT32,
        "listenAddress": {"type": "string"},
        "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
    },
}

_NODE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "role": {"enum": ["control-plane", "worker"]},
        "image": {"type": "string"},
        "labels": _STRING_MAP,
        "extraMounts": {"type": "array", "items": _MOUNT},
        "extraPortMappings": {"type": "array", "items": _PORT_MAPPING},
        "kubeadmConfigPatches": _STRINGS,
        "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH_JSON6902},
    },
}

_NETWORKING = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ipFamily": {"enum": ["ipv4", "ipv6", "dual"]},
        "apiServerPort": _INT32,
        "apiServerAddress": {"type": "string"},
        "podSubnet": {"type": "string"},
        "serviceSubnet": {"type": "string"},
        "disableDefaultCNI": {"type": "boolean"},
        "kubeProxyMode": {"enum": ["iptables", "ipvs", "nftables"]},
        "dnsSearch": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}

CLUSTER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"const": "Cluster"},
        "apiVersion": {"const": API_VERSION},
        "name": {"type": "string"},
        "nodes": {"type": "array", "items": _NODE},
        "networking": _NETWORKING,
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": _STRING_MAP,
        "kubeadmConfigPatches": _STRINGS,
        "kubeadmConfigPatchesJSON6902": {"type": "array", "items": _PATCH_JSON6902},
        "containerdConfigPatches": _STRINGS,
        "containerdConfigPatchesJSON6902": _STRINGS,
    },
}


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    return object_validator(CLUSTER_SCHEMA)


def kind_config_errors(config: dict[str, Any]) -> list[str]:
    """Why ``kind create cluster --config`` would refuse ``config``, one ``path: message`` line each."""
    return error_lines(_validator().iter_errors(config))
