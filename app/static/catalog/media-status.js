// Studio: while a track's stream copies are being made, ask for the jobs' progress every two seconds and
// show it; once nothing is waiting or running, stop (a finished or failed job reloads the page once, so
// its buttons and details appear). Without JavaScript the page shows the progress as of its loading.
(function () {
  "use strict";
  const spans = () => Array.from(document.querySelectorAll(".media-job[data-track]"));
  const busy = (status) => status === "queued" || status === "running" || status === "retrying";
  const table = document.querySelector("[data-media-status]");
  if (!table || !spans().some((s) => busy(s.dataset.status))) return;
  const url = table.dataset.mediaStatus;
  async function poll() {
    let jobs;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return setTimeout(poll, 5000);
      jobs = (await response.json()).tracks;
    } catch (e) {
      return setTimeout(poll, 5000);
    }
    let still = false;
    for (const span of spans()) {
      const job = jobs[span.dataset.track];
      if (!job) continue;
      if (busy(span.dataset.status) && !busy(job.status)) { window.location.reload(); return; }
      const bar = span.querySelector("progress");
      const percent = span.querySelector(".media-job-percent");
      if (bar) { bar.value = job.progress; bar.textContent = job.progress + "%"; }
      if (percent) percent.textContent = job.progress + "%";
      still = still || busy(job.status);
    }
    if (still) setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
