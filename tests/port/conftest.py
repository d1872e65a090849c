"""Tests marked ``slow`` here run only when asked for (``pytest -m slow tests/port``): the
marker says "not run in CI", and the suite's command line selects no markers."""

import pytest


def pytest_collection_modifyitems(config, items):
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords and str(item.fspath).startswith(str(config.rootpath / "tests" / "port")):
            item.add_marker(skip)

# Sources are torch model files used as test data (ported by the tests), not tests.
collect_ignore_glob = ["sources/*"]
