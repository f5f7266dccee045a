"""Images for the kind road: the echo image built from this project, and the list every node must hold.

Nodes never pull: every image a pod runs is pulled once by the host's docker (or built) and
loaded into each node with ``kind load docker-image`` (kind's documented way without a registry).
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import eastwest.apps
from eastwest.backends.kube import pins

DOCKERFILE = Path(__file__).with_name("echo.Dockerfile")


def echo_context() -> bytes:
    """The echo image's build context as a tar stream (``docker build -`` reads it from stdin):
    the Dockerfile and ``eastwest/apps/``, with fixed metadata so the same sources give the same bytes."""
    apps = Path(eastwest.apps.__file__).parent
    files = {"Dockerfile": DOCKERFILE.read_bytes(),
             "eastwest/apps/__init__.py": (apps / "__init__.py").read_bytes(),
             "eastwest/apps/echo.py": (apps / "echo.py").read_bytes()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def echo_context_digest() -> str:
    return hashlib.sha256(echo_context()).hexdigest()


def node_images(workload_images: list[str]) -> list[str]:
    """Every image the nodes must hold: third-party ones, and the workloads' (echo included)."""
    return sorted({*pins.THIRD_PARTY_IMAGES, *workload_images})


def built_here(image: str) -> bool:
    return image == pins.ECHO_IMAGE
