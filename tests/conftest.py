"""Suite runs shared by the sign-off self-tests (each one real run on a lab of its own, made once per session)."""

from __future__ import annotations

import shutil

import pytest

from tests.signoff import SuiteRun, run_suites

#: a failing run: split roots break mTLS across the gateway; mesh identity still passes
FAILING = (
    "suites/security/test_mtls_across_gateway.py",
    "suites/security/test_untrusted_root.py::test_client_with_untrusted_root_is_refused[echo-eu-only]",
    # the control planes' settings: split roots leave them alone (the workload identities, checked over mTLS, fail)
    "suites/topology/test_mesh_identity.py::test_clusters_share_mesh_id_and_trust_domain",
    "suites/topology/test_mesh_identity.py::test_clusters_are_on_distinct_networks",
)
#: a passing run, on two pytest-xdist workers (each brings up its own lab; the controller merges)
PASSING = ("suites/topology/test_mesh_identity.py", "suites/topology/test_east_west_gateways.py")


@pytest.fixture(scope="session")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    if shutil.which("unshare") is None:
        pytest.skip("the lab needs unshare (util-linux)")
    return run_suites(tmp_path_factory.mktemp("failing"), "--lab-break", "split-roots", "--mesh-timeout", "convergence=2", *FAILING)


@pytest.fixture(scope="session")
def passing_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    if shutil.which("unshare") is None:
        pytest.skip("the lab needs unshare (util-linux)")
    return run_suites(tmp_path_factory.mktemp("passing"), "-n", "2", *PASSING)


@pytest.fixture(scope="session")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """A run whose mesh never comes up: every lab proxy is /bin/false."""
    return run_suites(tmp_path_factory.mktemp("broken"), "--lab-envoy", "/bin/false", *PASSING)
