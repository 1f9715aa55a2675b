"""Checks every staff page a browser test visits must pass: no sideways page scroll, no
serious or critical axe-core violation, and a main landmark and first heading (axe-core
vendored under tests/browser/vendor)."""

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
BLOCKING = ("serious", "critical")
# Moderate, but each on every page: a screen reader's "jump to main content" and "first
# heading" find nothing, the page's content sits in no landmark, and its outline skips a level
# (sections as h3 under the page's h1).
LANDMARKS = ("landmark-one-main", "page-has-heading-one", "region", "heading-order")
RUN_AXE = f"""async () => {{
    const result = await axe.run(document, {{resultTypes: ["violations"]}});
    return result.violations
        .filter(v => {json.dumps(BLOCKING)}.includes(v.impact)
                     || {json.dumps(LANDMARKS)}.includes(v.id))
        .map(v => ({{id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" "))}}));
}}"""


def problems(page: Page) -> list[str]:
    """What is wrong with the page as shown: sideways scroll and blocking axe violations."""
    found: list[str] = []
    width, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    if width > inner:
        found.append(f"{page.url} scrolls sideways: {width} > {inner}")
    # axe is injected through the DevTools protocol (the context bypasses CSP for this only):
    # the page under test keeps its own policy for everything it loads itself.
    page.evaluate(AXE_SOURCE + "\n;0")
    violations: list[dict[str, Any]] = page.evaluate(RUN_AXE)
    found += [f"{page.url} {v['id']} ({v['impact']}): {v['nodes'][:3]}" for v in violations]
    return found


def assert_usable(page: Page, visited: list[str]) -> None:
    """Check the page now shown and remember it was seen."""
    page.wait_for_load_state("load")
    visited.append(page.url)
    assert problems(page) == []
