// The staff menu folds behind its button on narrow screens. Without this script the button
// stays hidden and the menu open, so every page is still reachable.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector(".staff-nav-toggle");
  const nav = document.getElementById("staff-nav");
  if (!button || !nav) return;
  document.documentElement.classList.add("staff-js");
  button.hidden = false;
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  });
});
// "Select all" ticks every row of the list for a bulk action in place. Without JavaScript the
// "Select all on this page" link does it by loading the page again with every row ticked; with
// it, the header's checkbox takes over and the link goes.
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll("input.select-all")) {
    (box.closest("label.tick-target") || box).hidden = false;
    const label = box.closest("th")?.querySelector(".select-all-label");
    if (label) label.remove();
    for (const link of document.querySelectorAll("a.select-all-link")) link.hidden = true;
    box.addEventListener("change", () => {
      for (const row of document.querySelectorAll('input[name="pks"][form="selection-form"]')) {
        row.checked = box.checked;
      }
    });
  }
});
