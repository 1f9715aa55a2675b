"""Playwright driving Debian's chromium. In CI a missing browser fails the run; locally it skips."""

import os
import shutil
from collections.abc import Iterator
from typing import TypedDict

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

CHROMIUM = os.environ.get("OFFERTRACK_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


class ContextOptions(TypedDict):
    """The keywords of Browser.new_context that PHONE sets, typed so that ``**PHONE`` checks."""

    viewport: ViewportSize
    device_scale_factor: float
    is_mobile: bool
    has_touch: bool


PHONE: ContextOptions = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        message = f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**PHONE)
    page = context.new_page()
    yield page
    context.close()


# The brief's phone for the walks at a sales person's and a customer's hand: an iPhone 12 to
# 15's 390 x 844 CSS pixels, touch.
PHONE_390: ContextOptions = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}


DESK: ContextOptions = {
    "viewport": {"width": 1280, "height": 900},
    "device_scale_factor": 1,
    "is_mobile": False,
    "has_touch": False,
}


@pytest.fixture(params=["phone", "desk"])
def screen(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A phone, then a desk, for the every-page checks (tests.browser.staffpages)."""
    options = PHONE if request.param == "phone" else DESK
    context = browser.new_context(**options, bypass_csp=True)  # for axe only: see staffpages
    page = context.new_page()
    yield page
    context.close()
