// Sends a form once. Loaded by every page with a form that changes something: the customer's
// pages (accept, decline, ask a question, subscribe), the staff sign-in steps and the staff site.
// No inline code and nothing from elsewhere: the pages' Content-Security-Policy allows scripts
// from our own origin only. Without JavaScript the server's repeat rule (app/repeats.py) still
// keeps a second copy from being saved or mailed twice.
//
// On a phone on a slow network a double tap, or a second tap while the answer is slow, sent a
// form twice (two stage updates, two mails to the customer, a second "Accept" that met an
// error). Once a form is on its way its submit buttons are disabled and a second submit is
// dropped. Disabling waits a tick: the
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
