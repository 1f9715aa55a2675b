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
    box.hidden = false;
    const label = box.parentElement.querySelector(".select-all-label");
    if (label) label.remove();
    for (const link of document.querySelectorAll("a.select-all-link")) link.hidden = true;
    box.addEventListener("change", () => {
      for (const row of document.querySelectorAll('input[name="pks"][form="selection-form"]')) {
        row.checked = box.checked;
      }
    });
  }
});
// On a phone on a slow network a double tap, or a second tap while the answer is slow, sent a
// form twice (two stage updates, two mails to the customer). Once a form is on its way its
// submit buttons are disabled and a second submit is dropped. Disabling waits a tick: the
// browser reads the form after this handler, and a disabled button would drop the
// name=value of the button that was pressed (the editor's "Add line", "Save").
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method !== "post") return;
  if (form.dataset.submitting) {
    event.preventDefault();
    return;
  }
  if (event.defaultPrevented) return;
  form.dataset.submitting = "yes";
  setTimeout(() => {
    for (const button of submitButtons(form)) {
      if (button.disabled) continue;
      button.disabled = true;
      button.dataset.disabledOnSubmit = "yes";
    }
  }, 0);
});
// Back to a page kept in the back/forward cache, its forms must work again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  for (const form of document.querySelectorAll("form[data-submitting]")) {
    delete form.dataset.submitting;
    for (const button of form.querySelectorAll("[data-disabled-on-submit]")) {
      delete button.dataset.disabledOnSubmit;
      button.disabled = false;
    }
  }
});
function submitButtons(form) {
  return Array.from(form.elements).filter(
    (element) =>
      (element instanceof HTMLButtonElement || element instanceof HTMLInputElement) &&
      element.type === "submit",
  );
}
