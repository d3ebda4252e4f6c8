"""The ``chromium`` fixture (a started headless Chromium) for the browser tests."""

from tests.browser.chromium import chromium

__all__ = ["chromium"]
