"""Shared fixtures.  The namespace test bed's fixtures come from ``tune.testbed.pytest_plugin``."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "xen_attitune")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

import importlib.util

if importlib.util.find_spec("tune.testbed.pytest_plugin") is not None:
    pytest_plugins = ["tune.testbed.pytest_plugin"]


@pytest.fixture
def example_dir() -> str:
    return EXAMPLE


def pytest_report_header(config):  # noqa: D103
    return [f"tune tests: root={os.geteuid() == 0} python={sys.version.split()[0]}"]
