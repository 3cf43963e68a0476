// The dashboard's only script: the live feed (server-sent events) and the reset button.
// Rows are built with textContent, never HTML, so nothing a callback carries can run here.
"use strict";

(function () {
  const RECONNECT_MS = 5000;

  function when(epoch) {
    return new Date(epoch * 1000).toISOString().slice(0, 19).replace("T", " ");
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // The same cells as templates/dashboard/_feed_row.html.
  function feedRow(item, fresh) {
    const row = document.createElement("tr");
    row.className = (item.unprocessed ? "partial" : "ok") + (fresh ? " fresh" : "");
    row.dataset.id = String(item.id);
    const link = document.createElement("a");
    link.href = "/dashboard/callbacks/" + item.id;
    link.textContent = "#" + item.id;
    cell(row, "").appendChild(link);
    cell(row, when(item.received_at));
    const status = document.createElement("span");
    status.className = "status s" + item.status;
    status.textContent = String(item.status);
    cell(row, "").appendChild(status);
    cell(row, String(item.total), "num");
    cell(row, String(item.processed), "num");
    cell(row, String(item.unprocessed), "num");
    cell(row, item.error || "all processed");
    return row;
  }

  function startFeed(table) {
    const body = table.tBodies[0];
    const badge = document.getElementById("live");
    let url = table.dataset.stream;
    let source = null;
    // Rows sent before the first counts are the backlog the page opened on: not highlighted.
    let backlog = true;

    function state(text, on) {
      badge.textContent = text;
      badge.className = "live " + (on ? "on" : "off");
    }

    function connect() {
      source = new EventSource(url);
      source.addEventListener("open", () => state("live", true));
      source.addEventListener("callback", (message) => {
        const item = JSON.parse(message.data);
        if (body.querySelector('tr[data-id="' + item.id + '"]')) return;
        body.insertBefore(feedRow(item, !backlog), body.firstChild);
        // Resume after this row if the browser must open a new stream by itself.
        url = url.replace(/after=\d+/, "after=" + item.id);
      });
      source.addEventListener("counts", (message) => {
        backlog = false;
        const counts = JSON.parse(message.data);
        for (const [name, value] of Object.entries(counts)) {
          const tile = document.querySelector('[data-count="' + name + '"]');
          if (tile) tile.textContent = String(value);
        }
      });
      source.addEventListener("reset", () => {
        source.close();
        window.location.reload();
      });
      source.addEventListener("error", () => {
        // A stream that ended is reopened by EventSource itself; one refused is not.
        if (source.readyState === EventSource.CLOSED) {
          state("reconnecting", false);
          window.setTimeout(connect, RECONNECT_MS);
        } else {
          state("reconnecting", false);
        }
      });
    }
    connect();
  }

  function startReset(button) {
    button.addEventListener("click", async () => {
      if (!window.confirm("Empty the receiver's log and everything derived from it?")) return;
      const response = await fetch("/api/state", { method: "DELETE", credentials: "same-origin" });
      if (!response.ok) {
        const answer = await response.json().catch(() => ({}));
        window.alert("Reset refused: " + (answer.error || response.status));
        return;
      }
      window.location.reload();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const table = document.getElementById("feed");
    if (table && table.dataset.stream) startFeed(table);
    const reset = document.getElementById("reset");
    if (reset) startReset(reset);
  });
})();
