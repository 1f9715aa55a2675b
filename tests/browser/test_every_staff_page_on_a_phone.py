"""Every staff page on a 390 x 844 phone, signed in as an admin on demo-like data (lists and
tables not empty): the page does not scroll sideways, no table is wider than its container
unless it sits in a labelled, focusable scroll region (WCAG 2.1.1 and 4.1.2: a region a
keyboard can scroll and a screen reader can name), every link and button in the main content
is a 44 px target or has 44 px of room around it (WCAG 2.5.5, with 2.5.8's spacing rule at
44 px), axe-core reports no violation at all, best practices included, and the page's first
heading or card sits under the top bar without a gap (a list's card sat 76 px below it, under
an empty page header).

The pages come from the app's routes (tests.admin.staffroutes), as in the every-page test at
360 px; one browser context and one page walk them all, with every <details> opened so the
tables folded inside are measured too.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from tests.admin.staffroutes import PASSWORD, demo_data, staff_pages
from tests.browser.staffpages import AXE_SOURCE

pytestmark = [pytest.mark.browser, pytest.mark.concurrency]
PHONE_390 = {"width": 390, "height": 844}
TAP = 44
# The most room above a page's first heading or card (the shell's margin on a phone is 16 px).
GAP = 24

# What the page shows, measured in the page: room above its content, sideways scroll, tables wider than their box,
# scrolling boxes that are no labelled region, and targets under 44 px without the room.
MEASURE = """([tap, room]) => {
  for (const d of document.querySelectorAll("main details")) d.open = true;
  const shown = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 1 && r.height > 1 && s.visibility !== "hidden" && !e.closest("[hidden]"); };
  const name = e => e.id ? "#" + e.id : e.tagName.toLowerCase()
    + (e.className && typeof e.className === "string" ? "." + e.className.trim().split(/\\s+/).join(".") : "");
  const scrolls = e => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
  const region = e => e.getAttribute("role") === "region" && e.tabIndex === 0
    && (e.getAttribute("aria-label") || e.getAttribute("aria-labelledby"));
  const found = [];
  // Under the shell's top bar (the sign-in page centres its form on purpose).
  const main = document.querySelector(".staff-shell main");
  const first = [...document.querySelectorAll("main h1, main .card, main form, main p")].find(shown);
  const above = main ? first.getBoundingClientRect().top - main.getBoundingClientRect().top : 0;
  if (above > room) found.push(`${Math.round(above)} px of nothing above the first ${name(first)}`);
  const doc = document.documentElement.scrollWidth;
  if (doc > innerWidth) found.push(`the page scrolls sideways: ${doc} px in ${innerWidth}`);
  for (const box of document.querySelectorAll("main *")) {
    if (shown(box) && scrolls(box) && box.scrollWidth > box.clientWidth + 1 && !region(box))
      found.push(`${name(box)} scrolls sideways (${box.scrollWidth} px in ${box.clientWidth}) and is no labelled focusable region`);
  }
  for (const table of document.querySelectorAll("main table")) {
    if (!shown(table)) continue;
    const holder = table.parentElement, wide = table.getBoundingClientRect().width;
    const room = holder.clientWidth;
    if (wide > room + 1 && !(scrolls(holder) && region(holder)))
      found.push(`table ${name(table)} is ${Math.round(wide)} px wide in ${room}`);
  }
  // In a sentence a link is as tall as its line (WCAG's inline exception); alone it is a target.
  const inline = e => { if (e.tagName !== "A") return false;
    let block = e.parentElement;
    while (block && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
    return getComputedStyle(e).display === "inline"
      && block.textContent.trim().length > e.textContent.trim().length; };
  const targets = [...document.querySelectorAll(
      "main a[href], main button, main summary, main input[type=submit], main input[type=button]")]
    .filter(e => shown(e) && !inline(e)).map(e => ({e, r: e.getBoundingClientRect()}));
  const centre = r => [r.x + r.width / 2, r.y + r.height / 2];
  const gap = ([x, y], r) => Math.hypot(Math.max(r.left - x, 0, x - r.right), Math.max(r.top - y, 0, y - r.bottom));
  const small = targets.filter(t => t.r.height < tap);
  for (const t of small) {
    const c = centre(t.r);
    const near = targets.find(o => o !== t && !o.e.contains(t.e) && !t.e.contains(o.e)
      && (gap(c, o.r) < tap / 2 || (small.includes(o) && Math.hypot(c[0] - centre(o.r)[0], c[1] - centre(o.r)[1]) < tap)));
    if (near) found.push(`${name(t.e)} "${t.e.textContent.trim().slice(0, 30)}" is ${Math.round(t.r.height)} px tall, ${Math.round(gap(c, near.r))} px from ${name(near.e)}`);
  }
  return found;
}"""
RUN_AXE = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .map(v => `axe ${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`)"""


def phone_problems(page: Page) -> list[str]:
    """What is wrong with the page shown, at the phone's width."""
    page.wait_for_load_state("load")
    found: list[str] = page.evaluate(MEASURE, [TAP, GAP])
    page.evaluate(AXE_SOURCE + "\n;0")
    violations: list[str] = page.evaluate(RUN_AXE)
    return found + violations


def _signed_in_phone(browser: Browser, live_server: str) -> Page:
    context = browser.new_context(
        viewport=PHONE_390,  # type: ignore[arg-type]
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        bypass_csp=True,  # for axe only: see tests.browser.staffpages
    )
    return context.new_page()


def test_every_staff_page_fits_a_390_px_phone(
    app: FastAPI, committed: Engine, live_server: str, browser: Browser
) -> None:
    pages = staff_pages(app, demo_data(committed), committed)
    page = _signed_in_phone(browser, live_server)
    found: dict[str, Any] = {}
    try:
        page.goto(f"{live_server}{pages[0]}")
        found[pages[0]] = phone_problems(page)
        page.get_by_label("E-mail").fill("admin@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Orders per stage")).to_be_visible()
        for path in pages[1:]:
            response = page.goto(f"{live_server}{path}")
            assert response is not None and response.status == 200, path
            assert "/admin/login" not in page.url, f"{path} sent the admin to sign in"
            found[path] = phone_problems(page)
    finally:
        page.context.close()
    report = [f"{path}: {problem}" for path, problems in found.items() for problem in problems]
    assert not report, "\n".join(report)
