// What a 390 px phone shows of a staff page, measured in the page (for
// tests/browser/test_every_staff_page_on_a_phone.py). Takes [tap, room]: the least height of a
// target (px) and the most room above the page's first heading or card; returns what is wrong.
([tap, room]) => {
  for (const d of document.querySelectorAll("main details")) d.open = true;
  const shown = e => {
    const r = e.getBoundingClientRect();
    return r.width > 1 && r.height > 1 && getComputedStyle(e).visibility !== "hidden";
  };
  const name = e => e.id ? `#${e.id}` : e.tagName.toLowerCase()
    + (typeof e.className === "string" && e.className.trim()
      ? "." + e.className.trim().split(/\s+/).join(".") : "");
  const scrolls = e => ["auto", "scroll"].includes(getComputedStyle(e).overflowX);
  // A scroll region a keyboard reaches and a screen reader names (WCAG 2.1.1, 4.1.2).
  const region = e => e.getAttribute("role") === "region" && e.tabIndex === 0
    && Boolean(e.getAttribute("aria-label") || e.getAttribute("aria-labelledby"));
  const found = [];

  // Under the shell's top bar (the sign-in page centres its form on purpose).
  const main = document.querySelector(".staff-shell main");
  const first = [...document.querySelectorAll("main h1, main .card, main form, main p")].find(shown);
  const above = main && first ? first.getBoundingClientRect().top - main.getBoundingClientRect().top : 0;
  if (above > room) found.push(`${Math.round(above)} px of nothing above the first ${name(first)}`);

  const page = document.documentElement.scrollWidth;
  if (page > innerWidth) found.push(`the page scrolls sideways: ${page} px in ${innerWidth}`);
  for (const box of document.querySelectorAll("main *")) {
    if (shown(box) && scrolls(box) && box.scrollWidth > box.clientWidth + 1 && !region(box)) {
      found.push(`${name(box)} scrolls sideways (${box.scrollWidth} px in ${box.clientWidth})`
        + " and is no labelled focusable region");
    }
  }
  for (const table of document.querySelectorAll("main table")) {
    if (!shown(table)) continue;
    const holder = table.parentElement, wide = table.getBoundingClientRect().width;
    if (wide > holder.clientWidth + 1 && !(scrolls(holder) && region(holder))) {
      found.push(`table ${name(table)} is ${Math.round(wide)} px wide in ${holder.clientWidth}`);
    }
  }

  // In a sentence a link is as tall as its line (WCAG 2.5.8's inline exception); a link alone
  // in its block is a target like a button.
  const inline = e => {
    if (e.tagName !== "A" || getComputedStyle(e).display !== "inline") return false;
    let block = e.parentElement;
    while (getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
    return block.textContent.trim().length > e.textContent.trim().length;
  };
  const targets = [...document.querySelectorAll(
    "main a[href], main button, main summary, main input[type=submit], main input[type=button]",
  )].filter(e => shown(e) && !inline(e)).map(e => ({e, r: e.getBoundingClientRect()}));
  const centre = r => [r.x + r.width / 2, r.y + r.height / 2];
  const distance = ([x, y], r) => Math.hypot(
    Math.max(r.left - x, 0, x - r.right), Math.max(r.top - y, 0, y - r.bottom));
  // WCAG 2.5.8's spacing rule at 44 px: a circle of 44 px around a smaller target's centre
  // touches no other target, nor the circle of another small one.
  const small = targets.filter(t => t.r.height < tap);
  for (const t of small) {
    const c = centre(t.r);
    const near = targets.find(o => o !== t && !o.e.contains(t.e) && !t.e.contains(o.e)
      && (distance(c, o.r) < tap / 2
        || (small.includes(o) && Math.hypot(c[0] - centre(o.r)[0], c[1] - centre(o.r)[1]) < tap)));
    if (near) {
      found.push(`${name(t.e)} "${t.e.textContent.trim().slice(0, 30)}" is`
        + ` ${Math.round(t.r.height)} px tall, ${Math.round(distance(c, near.r))} px from ${name(near.e)}`);
    }
  }
  return found;
}
