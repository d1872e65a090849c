"""Test session setup: 8 fake CPU devices (for the multi-device tests) and a fixed seed."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import pytest  # noqa: E402

import jmod  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global random state."""
    jmod.manual_seed(0)
    yield


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the largest torch-parity error seen per layer class (for review notes)."""
    try:
        from tests.helpers import MAX_ERRORS
    except Exception:  # pragma: no cover
        return
    if not MAX_ERRORS:
        return
    terminalreporter.section("torch parity: largest absolute error per layer")
    terminalreporter.write_line(f"{'layer':32s} {'forward':>12s} {'gradient':>12s}")
    for name in sorted(MAX_ERRORS):
        fwd, grad = MAX_ERRORS[name]
        terminalreporter.write_line(f"{name:32s} {fwd:12.3e} {grad:12.3e}")
