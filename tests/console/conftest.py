"""Fixtures for the console's browser tests: one read-only broker, one with
actions enabled, and one headless chromium for the whole run."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402


@pytest.fixture(scope="session")
def driver():
    d = harness.browser()
    yield d
    d.quit()


@pytest.fixture(scope="session")
def readonly():
    b = harness.ConsoleBroker(actions=False).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def writable():
    b = harness.ConsoleBroker(actions=True).start()
    yield b
    b.stop()
