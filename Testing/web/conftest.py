"""The browser tests run only when asked for (``pytest -m browser Testing/web``): they start a
server and a browser and take minutes, so the default test run leaves them out."""

import pytest


def pytest_collection_modifyitems(config, items):
    if "browser" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="browser test: run with pytest -m browser Testing/web "
                                   "(Testing/web/run_browser_tests.sh)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
