"""The browser fixture itself: a real headless Chromium renders and runs a page's script."""

from __future__ import annotations


def test_headless_chromium_runs_page_script(page: object) -> None:
    page.set_content(
        "<p id='out'></p><script>document.getElementById('out').textContent = 'ran'</script>"
    )
    assert page.inner_text("#out") == "ran"
