// The job page's live status: the console's own event stream (the session cookie, no key in the page).
(function () {
  var status = document.getElementById("status");
  if (!status || status.dataset.final === "yes" || !window.EventSource) return;
  var source = new EventSource(status.dataset.events);
  source.addEventListener("status", function (e) { status.textContent = JSON.parse(e.data).status; });
  source.addEventListener("job", function (e) {
    status.textContent = JSON.parse(e.data).status;
    source.close();
    window.location.reload(); // the finished job's result, rendered by the server
  });
})();
