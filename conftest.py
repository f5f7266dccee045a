"""Registers the harness, the pytest plugin in fixtures/.

An installed eastwest registers the same modules through its ``pytest11`` entry point (as
``eastwest.fixtures``); then this file registers nothing, so no module runs twice.
"""

import importlib.util
import os

_installed = importlib.util.find_spec("eastwest.fixtures") is not None and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
pytest_plugins = () if _installed else ("fixtures.plugin",)
