"""Waiting in a browser test without stalling the page."""

from __future__ import annotations

import time


def wait_for(page, condition, what: str = "condition", timeout_s: float = 20.0) -> None:
    """Poll `condition` while Playwright keeps handling the page's events (a plain sleep would stall them)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")
