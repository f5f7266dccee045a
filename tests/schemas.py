"""Moved to the library: ``eastwest/schemas/`` (crd, core, helm, kind, common).

Kept as a re-export so code written against ``tests.schemas`` keeps importing; new code
imports ``eastwest.schemas`` and its modules.
"""

from __future__ import annotations

from eastwest.schemas import schemas_root  # noqa: F401
from eastwest.schemas.common import *  # noqa: F401,F403
from eastwest.schemas.common import FORMAT_CHECKER, KubernetesValidator, error_lines, metadata_errors, object_validator  # noqa: F401
from eastwest.schemas.core import *  # noqa: F401,F403
from eastwest.schemas.crd import *  # noqa: F401,F403
from eastwest.schemas.helm import *  # noqa: F401,F403
