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


def pytest_sessionfinish(session, exitstatus):
    """Under pytest-xdist, send this worker's parity records to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is None:
        return
    from tests.helpers import CASES, MAX_ERRORS, MAX_REL_ERRORS

    workeroutput["torch_parity"] = {
        name: [*errs, *MAX_REL_ERRORS[name], sorted(CASES.get(name, ()))] for name, errs in MAX_ERRORS.items()
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """Under pytest-xdist (controller): merge a finished worker's parity records."""
    from tests.helpers import CASES, MAX_ERRORS, MAX_REL_ERRORS

    for name, (fwd, grad, fwd_rel, grad_rel, cases) in (
        getattr(node, "workeroutput", {}).get("torch_parity", {}).items()
    ):
        errs, rels = MAX_ERRORS[name], MAX_REL_ERRORS[name]
        errs[0], errs[1] = max(errs[0], fwd), max(errs[1], grad)
        rels[0], rels[1] = max(rels[0], fwd_rel), max(rels[1], grad_rel)
        CASES[name].update(cases)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print the largest torch-parity error per layer and per layer family (for review notes),
    with the number of tests that checked each."""
    if getattr(config, "workeroutput", None) is not None:
        return
    try:
        from tests._parity_summary import write_summary
        from tests.helpers import CASES, MAX_ERRORS, MAX_REL_ERRORS
    except Exception:  # pragma: no cover
        return
    if not MAX_ERRORS:
        return
    terminalreporter.section("torch parity: largest error per layer and family")
    write_summary(terminalreporter.write_line, MAX_ERRORS, MAX_REL_ERRORS, CASES)


def pytest_collection_modifyitems(config, items):
    """``slow`` tests (pyproject: "run with -m slow") are left out unless a ``-m``
    expression is given; each has a fast counterpart in the default run."""
    if config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
