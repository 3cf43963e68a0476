"""The dashboard in a real browser (Playwright driving Debian's Chromium; skipped, with the
reason, where it is absent): a callback posted over HTTP appears in the live feed without a
reload, opens, leads to its profile and to its campaign's chart; the reset button empties it.

With BOUNCEBACK_SCREENSHOTS=FOLDER set, the test also saves the pages the docs show there
(`receiver-dashboard.png`, `receiver-dashboard-report.png`; docs/images/ holds the committed ones).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect

from reference_impl.receiver.server import running_receiver
from tests.reference_impl.receiver.dashboard.campaign import (
    MESSAGE_ID,
    campaign_meta,
    envelope,
    record_history,
    unattributed_body,
)

SCREENSHOTS = os.environ.get("BOUNCEBACK_SCREENSHOTS")


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=False)


def test_a_posted_callback_appears_live_opens_and_leads_to_profile_and_chart(
    page: Any, tmp_path: Path
) -> None:
    with running_receiver(tmp_path / "db.sqlite3") as receiver:
        record_history(receiver.store, time.time())
        page.set_viewport_size({"width": 1280, "height": 860})
        page.goto(f"{receiver.url}/")
        page.wait_for_selector("#live.on")
        page.evaluate("window.notReloaded = true")

        hard = envelope([("hard_bounce", campaign_meta(40)), ("spam", campaign_meta(41))])
        assert httpx.post(receiver.callback_url, content=hard).status_code == 200
        assert httpx.post(receiver.callback_url, content=unattributed_body()).status_code == 200
        newest = receiver.store.latest_callback_id()
        page.wait_for_selector(f'#feed tr[data-id="{newest}"]')
        assert page.evaluate("window.notReloaded") is True, "the row came without a reload"
        assert page.inner_text(f'#feed tr[data-id="{newest}"]').count("1 event(s) failed") == 1
        expect(page.locator('[data-count="callbacks"]')).to_have_text(str(newest))
        screenshot(page, "receiver-dashboard.png")

        page.click(f'#feed tr[data-id="{newest - 1}"] a')
        page.wait_for_selector("article.event")
        assert page.locator("article.event").count() == 2
        assert "Notification Failed" in page.inner_text("article.event >> nth=0")
        page.click("article.event >> nth=0 >> dd a[href^='/dashboard/profiles']")
        page.wait_for_selector("#profile")
        assert "unsubscribed" in page.inner_text("#profile")

        page.click("a[href^='/dashboard/callbacks/']")
        page.click(f"a[href='/dashboard/reports?message_id={MESSAGE_ID}']")
        page.wait_for_selector("svg#outcomes")
        bars = page.locator("svg#outcomes rect")
        assert bars.count() == 5
        titles = [bars.nth(i).text_content() for i in range(5)]
        assert titles[0] == "delivered: 24" and titles[1] == "hard bounce: 4"
        assert page.locator("svg#timeline g.arrivals").count() == 30
        placed = page.evaluate(
            """() => [...document.querySelectorAll('svg#timeline g.arrivals')].map(g =>
                [g.querySelector('rect.column').getAttribute('x'),
                 [...g.querySelectorAll('rect.seg')].map(r => r.getAttribute('x'))])"""
        )
        assert sum(len(segments) for _, segments in placed) >= 14
        for column, segments in placed:
            assert set(segments) <= {column}, "each column's segments stand in that column"
        assert page.inner_text("h1") == f"Campaign {MESSAGE_ID}"
        screenshot(page, "receiver-dashboard-report.png")

        page.goto(f"{receiver.url}/")
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#reset")  # the browser's own Origin passes the cross-site rule
        expect(page.locator('[data-count="callbacks"]')).to_have_text("0")
        assert receiver.store.counts()["callbacks"] == 0
        page.goto("about:blank")  # ends the live stream before the server stops
