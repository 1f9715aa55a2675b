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
