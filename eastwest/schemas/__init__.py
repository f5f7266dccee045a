"""Offline validation of everything the project applies or installs, against the real upstream schemas.

Split by where the schema comes from:

* ``crd.py``: CustomResourceDefinitions (Istio 1.30.3, Chaos Mesh 2.8.3, MetalLB 0.16.1) from the
  schemas folder, converted to JSON Schema with the API server's strict field validation;
* ``core.py``: built-in kinds, with the strict Kubernetes schemas of the ``kubernetes-validate`` package;
* ``helm.py``: Helm values, against a chart's ``values.schema.json`` and the key paths of its defaults;
* ``kind.py``: kind's ``v1alpha4`` cluster configuration, written from kind's Go types;
* ``common.py``: error lines, metadata rules, the validator they share.

:class:`Schemas` puts them behind one call. The schemas folder is ``EASTWEST_SCHEMAS`` or
``shared/schemas`` beside the repository; without it, CRD kinds and Helm values cannot be checked
offline (:class:`SchemaUnavailable` says so) and the API server's strict field validation is all
that stands before an apply. Nothing here imports pytest.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from eastwest.schemas import core, crd, helm, kind
from eastwest.schemas.common import is_builtin_group, metadata_errors, split_api_version

#: groups whose CRDs the schemas folder ships, and the file that holds them
CRD_GROUPS = {
    "networking.istio.io": crd.ISTIO_CRDS,
    "security.istio.io": crd.ISTIO_CRDS,
    "telemetry.istio.io": crd.ISTIO_CRDS,
    "extensions.istio.io": crd.ISTIO_CRDS,
    "chaos-mesh.org": crd.CHAOS_MESH_CRDS,
    "metallb.io": crd.METALLB_CRDS[0],
}
KIND_GROUP = "kind.x-k8s.io"


def schemas_root() -> Path:
    """``$EASTWEST_SCHEMAS``, else ``shared/schemas`` beside the repository this package is in."""
    env = os.environ.get("EASTWEST_SCHEMAS")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "schemas"


class SchemaUnavailable(Exception):
    """No schema to check an object or values file against here; the message names what is missing."""


class Schemas:
    """Every schema source behind one call: ``errors(body)`` for an object, ``values_errors`` for Helm values."""

    def __init__(self, root: Path | None = None):
        self.root = root or schemas_root()

    @property
    def available(self) -> bool:
        return self.root.is_dir()

    def crds(self) -> crd.CrdCatalog:
        return crd.crd_catalog(self.root)

    def errors(self, body: dict[str, Any]) -> list[str]:
        """Why the API server (or kind) would reject ``body``; raises SchemaUnavailable when nothing here can tell."""
        group, _ = split_api_version(str(body.get("apiVersion")))
        if group == KIND_GROUP:
            return kind.kind_config_errors(body)
        if group in CRD_GROUPS or group in self.crds().groups:
            if group not in self.crds().groups:
                raise SchemaUnavailable(f"{group} objects not validated: {self.root / CRD_GROUPS[group]} is missing")
            return self.crds().errors(body)
        if is_builtin_group(group):
            try:
                schemas = core.core_schemas()
            except core.CoreSchemasUnavailable as exc:
                raise SchemaUnavailable(f"built-in kinds not validated: {exc}") from None
            return schemas.errors(body) + [f"{p} (API server name/label rules)" for p in metadata_errors(body)]
        raise SchemaUnavailable(f"no schema for API group {group!r} in {self.root}; add its CRDs there and to CRD_GROUPS")

    def values_errors(self, chart_name: str, values: dict[str, Any]) -> list[str]:
        """Everything wrong with a values override for a chart of ``helm.CHARTS``."""
        chart = helm.CHARTS[chart_name]
        missing = [f for f in (chart.defaults, chart.schema) if f and not (self.root / f).is_file()]
        if missing:
            raise SchemaUnavailable(f"{chart.name} chart values not validated: {', '.join(str(self.root / f) for f in missing)} missing")
        return helm.chart_values_errors(self.root, chart, values)
