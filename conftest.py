"""The harness is a set of plugin modules under fixtures/, registered here and only here."""

pytest_plugins = (
    "fixtures.options",
    "fixtures.gating",
    "fixtures.clusters",
    "fixtures.waiting",
    "fixtures.manifests",
    "fixtures.reporting",
)
