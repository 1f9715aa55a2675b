"""Chart labels in a real browser: a long name of a placement or creative stays inside the
chart, on a phone, rather than running off its left edge."""

import pytest
from playwright.sync_api import Page

from app.analytics import charts

pytestmark = pytest.mark.browser
LABELS = ["Poster B (Summer 2027)", "Mmmm Wwww Mmmm Wwww", "Store 47, table tent", "K1"]


def test_long_bar_labels_stay_inside_the_chart(phone: Page) -> None:
    bars = charts.bars("chart-a", "Scans", LABELS, [charts.Series("Scans", [4, 3, 2, 1])])
    estimates = charts.intervals(
        "chart-b", "Estimates", [charts.Estimate(x, 0.2, 0.1, 0.3, None) for x in LABELS]
    )
    phone.set_content(f"<!doctype html><body style='margin:0'>{bars}{estimates}</body>")
    lefts = phone.evaluate(
        "() => [...document.querySelectorAll('svg text[text-anchor=end]')]"
        ".filter(t => t.getBBox().y > 0).map(t => [t.lastChild.textContent, t.getBBox().x])"
    )
    assert len(lefts) >= 2 * len(LABELS)
    assert all(x >= 0 for _, x in lefts), [(text, x) for text, x in lefts if x < 0]
    assert "K1" in {text for text, _ in lefts}  # short labels are drawn as they are
