"""A headless Chromium for the browser tests: Playwright driving Debian's `chromium`.

Playwright's own browser download cannot run everywhere the suite runs, so the tests launch the
system Chromium that `make browser` installs, and skip with the reason where it is absent.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
NO_CHROMIUM = "chromium not installed (make browser installs it): browser test skipped"


def chromium_path() -> str | None:
    """The Chromium the browser tests drive, or None when this machine has none."""
    return shutil.which("chromium") or (CHROMIUM if shutil.which(CHROMIUM) else None)


@contextmanager
def launched_chromium() -> Iterator[object]:
    """A headless Chromium browser (a Playwright `Browser`), closed on exit."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(NO_CHROMIUM)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
