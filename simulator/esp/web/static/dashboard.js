// The fake ESP's dashboard: keep the state fragment live and send the controls' changes.
// Plain JS, no build step. The server renders every fragment (templates/_state.html); this file
// only swaps it in, from server-sent events (api/stream), or by polling if the stream fails.
"use strict";

const state = document.getElementById("state");
const live = document.getElementById("live");
const errorLine = document.getElementById("control-error");
const POLL_MS = 1000;
let pollTimer = null;

function showLive(text, on) {
  live.textContent = text;
  live.className = on ? "live on" : "live off";
}

function swap(html) {
  state.innerHTML = html;
}

function poll() {
  fetch("dashboard/state", { credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => { swap(html); showLive("live (polling)", true); })
    .catch(() => showLive("disconnected", false));
}

function listen() {
  if (!window.EventSource) {
    pollTimer = setInterval(poll, POLL_MS);
    return;
  }
  const source = new EventSource("api/stream");
  source.addEventListener("state", (event) => { swap(event.data); showLive("live", true); });
  source.addEventListener("open", () => showLive("live", true));
  // The stream ends on purpose after a while; EventSource reconnects by itself.
  source.addEventListener("error", () => showLive("reconnecting…", false));
}

function report(response) {
  return response.json().then((body) => {
    errorLine.textContent = response.ok ? "" : body.error || "refused: " + response.status;
    if (response.ok) poll();
    return body;
  });
}

function send(method, url, change) {
  const options = {
    method: method,
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Bounceback-Source": "dashboard" },
  };
  if (change !== undefined) options.body = JSON.stringify(change);
  return fetch(url, options).then(report).catch((err) => { errorLine.textContent = String(err); });
}

// `faults.rcpt.rate` = "1" -> {"faults": {"rcpt": {"rate": 1}}}; numbers stay numbers.
function formChange(form) {
  const change = {};
  for (const input of form.querySelectorAll("input[name]")) {
    const path = input.name.split(".");
    let node = change;
    for (const key of path.slice(0, -1)) node = node[key] = node[key] || {};
    node[path[path.length - 1]] = input.type === "number" ? Number(input.value) : input.value;
  }
  return change;
}

for (const id of ["fault-form", "outcome-form"]) {
  const form = document.getElementById(id);
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send("PUT", "api/chaos", formChange(form));
    });
  }
}

for (const button of document.querySelectorAll("button[data-change]")) {
  button.addEventListener("click", () => send("PUT", "api/chaos", JSON.parse(button.dataset.change)));
}

for (const button of document.querySelectorAll("button[data-delete]")) {
  button.addEventListener("click", () => {
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    send("DELETE", button.dataset.delete);
  });
}

listen();
