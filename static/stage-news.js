// Tells a screen reader that an order moved to another stage. Loaded by an order's page, whose
// timeline htmx replaces every 30 seconds or on "Refresh". A live region inside the replaced
// part is a new element after each swap, so nothing in it was announced: #stage-news stays on
// the page, and gets the new current stage only when it differs from the one it last named,
// so a refresh that brings nothing new says nothing. The focus is left where it is.
document.addEventListener("htmx:afterSettle", () => {
  const timeline = document.getElementById("timeline");
  const news = document.getElementById("stage-news");
  if (!timeline || !news) return;
  const stage = timeline.dataset.stage || "";
  if (stage === news.dataset.stage) return;
  news.dataset.stage = stage;
  news.textContent = timeline.dataset.stageNews || "";
});
