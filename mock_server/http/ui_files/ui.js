// The ipmock dashboard: polls the admin API (/__mock/...) once a second, less often when a
// refresh takes long, and draws the journal, the jobs with their timelines and thumbnails,
// the client report and the controls. Every value that came from a client is put in the
// page as text (textContent, DOM nodes), never as HTML. The admin token, when the server
// has one, lives in this tab's sessionStorage and goes out as a header, never in a URL.

import { $, AdminError, TOKEN_KEY, admin, el } from "./dom.js";
import { drawJobs } from "./jobs.js";
import { drawJournal } from "./journal.js";
import { drawReport, reportPath } from "./report.js";

const POLL_MS = 1000;
const LOAD_SHARE = 4; // wait 4 times as long as the last fetch took (up to 10 s): a full
// journal is costly to read and judge, and the page must not keep the mock it watches busy
const MAX_WAIT_MS = 10_000;

// ---- state --------------------------------------------------------------------

const view = {
  clock: null,
  journal: [],
  jobs: [],
  queue: [],
  report: null, // the live report, once asked for
  reportError: null, // why the last report was refused (a poll floor or deadline)
  reportOpen: new Map(), // client or job -> whether the user left its part open
  open: new Set(), // journal entries whose details are shown
  thumbnails: new Map(), // "job/i" -> blob: URL
  drawn: { journal: "", jobs: "", report: "" },
};
let timer = null; // the next refresh, when one is planned
let inFlight = false;
let again = false;

// ---- clock and queue ----------------------------------------------------------

function drawClock() {
  const clock = view.clock;
  if (!clock) return;
  $("clock-time").textContent = clock.time;
  $("clock-time").title =
    "offset from wall time: " + (clock.offset >= 0 ? "+" : "") + clock.offset.toFixed(1) + " s";
  $("clock-state").textContent = clock.frozen ? "frozen" : "running";
  $("clock-state").className = "badge " + (clock.frozen ? "frozen" : "running");
  $("freeze").textContent = clock.frozen ? "Let it run" : "Freeze";
}

function drawQueue() {
  const names = view.queue.map((s) => (s && s.name) || "(a scenario object)");
  $("queue-list").textContent = names.length
    ? names.join(", then ")
    : "nothing queued (the usual rules pick)";
}

// ---- polling ------------------------------------------------------------------

/** Fetch everything and draw it; how long the fetching took (ms). */
async function refresh() {
  const started = performance.now();
  const [clock, journal, jobs, queue] = await Promise.all([
    admin("GET", "clock"),
    admin("GET", "journal"),
    admin("GET", "jobs"),
    admin("GET", "queue"),
  ]);
  try {
    view.report = await admin("GET", reportPath());
    view.reportError = null;
  } catch (error) {
    if (error.status !== 400) throw error;
    view.reportError = error.message; // a poll floor or deadline it refused
  }
  const took = performance.now() - started;
  view.clock = clock;
  view.journal = journal.entries;
  view.jobs = jobs.jobs;
  view.queue = queue.queue;
  drawClock();
  drawQueue();
  drawJournal(view);
  drawJobs(view);
  drawReport(view);
  return took;
}

async function tick() {
  timer = null;
  if (inFlight) {
    again = true; // a control asked for fresh data while a refresh was on its way
    return;
  }
  inFlight = true;
  let wait = POLL_MS;
  try {
    if (!document.hidden) {
      wait = Math.min(MAX_WAIT_MS, Math.max(POLL_MS, LOAD_SHARE * (await refresh())));
      const every = wait > POLL_MS ? " · every " + (wait / 1000).toFixed(1) + " s" : "";
      $("connection").textContent = "live · " + new Date().toLocaleTimeString() + every;
      $("connection").className = "connection live";
    }
  } catch (error) {
    if (error.status === 403) {
      askForToken(error.message);
      return; // no polling until the token form is sent
    }
    $("connection").textContent = "not updating: " + error.message;
    $("connection").className = "connection down";
  } finally {
    inFlight = false;
  }
  timer = setTimeout(tick, again ? 0 : wait);
  again = false;
}

/** Refresh now (after a control), keeping one polling loop. */
function poll() {
  if (timer !== null) clearTimeout(timer);
  tick();
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && !$("dashboard").hidden) poll();
});

// ---- the token ----------------------------------------------------------------

function askForToken(message) {
  const hadToken = sessionStorage.getItem(TOKEN_KEY) !== null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("dashboard").hidden = true;
  $("token-form").hidden = false;
  $("token-error").textContent = hadToken ? "The server refused that token: " + message : "";
  $("connection").textContent = "waiting for the admin token";
  $("connection").className = "connection down";
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
  $("token-input").value = "";
  $("token-form").hidden = true;
  $("dashboard").hidden = false;
  start();
});

// ---- controls -----------------------------------------------------------------

function say(text, ok) {
  const box = $("control-message");
  box.textContent = text;
  box.className = "message " + (ok ? "ok" : "error");
}

function control(id, action) {
  $(id).addEventListener("click", async () => {
    try {
      say(await action(), true);
      poll();
    } catch (error) {
      if (error.status === 403) askForToken(error.message);
      else say(error.message, false);
    }
  });
}

control("advance", async () => {
  const seconds = $("advance-seconds").valueAsNumber;
  const clock = await admin("POST", "clock", {
    advance: Number.isNaN(seconds) ? $("advance-seconds").value : seconds,
  });
  return "The clock moved " + seconds + " s, to " + clock.time + ".";
});
control("freeze", async () => {
  const frozen = !(view.clock && view.clock.frozen);
  const clock = await admin("POST", "clock", { freeze: frozen });
  return frozen
    ? "The clock stands at " + clock.time + "."
    : "The clock runs on from " + clock.time + ".";
});
control("set-clock", async () => {
  const text = $("set-time").value.trim();
  const at = /^[0-9]+(\.[0-9]+)?$/.test(text) ? Number(text) : text;
  const clock = await admin("POST", "clock", { set: at });
  return "The clock was set to " + clock.time + ".";
});
control("reset", async () => {
  await admin("POST", "reset");
  for (const url of view.thumbnails.values()) URL.revokeObjectURL(url);
  view.thumbnails.clear();
  view.open.clear();
  return "The mock was reset: no jobs, no queue, an empty journal, the clock at wall time.";
});
control("queue-scenario", async () => {
  const name = $("scenario-select").value;
  await admin("POST", "queue", { scenarios: [name] });
  return "Queued " + name + " for the next valid submit.";
});
control("queue-json", async () => {
  let scenarios;
  try {
    scenarios = JSON.parse($("scenario-json").value);
  } catch (error) {
    throw new AdminError(400, "That is not JSON: " + error.message);
  }
  const list = Array.isArray(scenarios) ? scenarios : [scenarios];
  await admin("POST", "queue", { scenarios: list });
  return "Queued " + list.length + " scenario(s) for the next valid submits.";
});
control("clear-queue", async () => {
  await admin("DELETE", "queue");
  return "The queue is empty.";
});

$("client-filter").addEventListener("change", () => {
  drawJournal(view);
  drawJobs(view);
});
$("path-filter").addEventListener("input", () => drawJournal(view));
for (const id of ["report-poll-floor", "report-deadline"]) $(id).addEventListener("change", poll);

async function loadScenarios() {
  const answer = await admin("GET", "scenarios");
  const select = $("scenario-select");
  select.replaceChildren(
    ...answer.scenarios.map((s) =>
      el("option", { value: s.name, title: s.description || "" }, s.name),
    ),
  );
  if (answer.scenarios.some((s) => s.name === "failure")) select.value = "failure";
}

async function start() {
  try {
    await loadScenarios();
  } catch (error) {
    if (error.status === 403) {
      askForToken(error.message);
      return;
    }
    $("connection").textContent = "not updating: " + error.message;
  }
  $("dashboard").hidden = false;
  poll();
}

start();
