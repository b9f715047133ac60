"""Open a report in headless Chromium (Debian's, driven by Playwright) and say what loaded."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ENV = "DFSTREAM_CHROMIUM"


def chromium() -> str:
    """The Chromium binary: $DFSTREAM_CHROMIUM, else chromium on PATH (`make test` installs Debian's)."""
    path = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail(
            "no Chromium: `make test` installs Debian's chromium (apt-get install chromium); "
            f"or point {CHROMIUM_ENV} at a Chromium binary"
        )
    return path


def open_report(path: Path, screenshot: Path) -> dict:
    """Load ``path`` and return what the page shows and what went wrong.

    Keys: ``errors`` (console errors, page errors, failed requests),
    ``requests`` (URLs other than the file itself and data: URIs),
    ``sections`` (ids), ``headings`` (h2 texts), ``images`` (alt, width, height
    as decoded), ``scripts`` (count of script elements). Writes a full-page
    screenshot to ``screenshot``.
    """
    from playwright.sync_api import sync_playwright

    errors, requests = [], []
    own = path.resolve().as_uri()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium())
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
            page.on(
                "request", lambda r: requests.append(r.url) if r.url != own and not r.url.startswith("data:") else None
            )
            page.goto(own, wait_until="load")
            found = page.evaluate("""() => ({
                sections: [...document.querySelectorAll('section[id]')].map(s => s.id),
                headings: [...document.querySelectorAll('h2')].map(h => h.textContent),
                images: [...document.images].map(i => ({alt: i.alt, width: i.naturalWidth, height: i.naturalHeight,
                                                       complete: i.complete})),
                scripts: document.scripts.length,
                links: [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href')),
            })""")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "requests": requests, **found}
