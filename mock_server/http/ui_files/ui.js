// The ipmock dashboard: polls the admin API (/__mock/...) once a second and draws the
// journal, the jobs with their timelines and thumbnails, the client report and the
// controls. Every value that came from a client is put in the page as text (textContent,
// DOM nodes), never as HTML. The admin token, when the server has one, lives in this
// tab's sessionStorage and goes out as a header, never in a URL.
"use strict";

(() => {
  const page = document.body.dataset;
  const SUBMIT_PATH = page.submitPath;
  const STATUS_PREFIX = page.statusPrefix;
  const IMAGE_PREFIX = page.imagePrefix;
  const TOKEN_HEADER = page.tokenHeader;
  const TOKEN_KEY = "ipmock.adminToken";
  const POLL_MS = 1000;
  const MAX_ROWS = 300; // journal rows drawn (newest first)
  const MAX_JOBS = 50; // job cards drawn (newest first)

  const $ = (id) => document.getElementById(id);

  /** An element with properties (className, title, ...) and children (nodes or text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  class AdminError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** One admin call; its JSON answer, or AdminError with the server's own words. */
  async function admin(method, path, body) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers[TOKEN_HEADER] = token;
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch("/__mock/" + path, init);
    } catch (error) {
      throw new AdminError(0, "the server did not answer (" + error.message + ")");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const said = data && typeof data.error === "string" ? data.error : null;
      throw new AdminError(response.status, said || response.status + " " + response.statusText);
    }
    return data;
  }

  // ---- state --------------------------------------------------------------------

  const view = {
    clock: null,
    journal: [],
    jobs: [],
    queue: [],
    report: undefined, // undefined: not asked yet; null: this server has no report
    open: new Set(), // journal entries whose details are shown
    thumbnails: new Map(), // "job/i" -> blob: URL
    drawn: { journal: "", jobs: "", report: "" },
  };
  let timer = null;

  // ---- formatting ---------------------------------------------------------------

  function clockTime(seconds) {
    const iso = new Date(seconds * 1000).toISOString();
    return iso.slice(11, 23);
  }

  function relative(seconds) {
    const sign = seconds < 0 ? "-" : "+";
    const s = Math.abs(seconds);
    return sign + (s < 10 ? s.toFixed(2) : s < 100 ? s.toFixed(1) : Math.round(s)) + " s";
  }

  function short(text, keep = 10) {
    if (typeof text !== "string") return "—";
    return text.length > keep + 1 ? text.slice(0, keep) + "…" : text;
  }

  function pretty(json, text) {
    if (json !== null && json !== undefined) return JSON.stringify(json, null, 2);
    return text || "";
  }

  function entryKey(entry, index) {
    return entry.seq !== undefined && entry.seq !== null
      ? "s" + entry.seq
      : "i" + index + "@" + entry.at;
  }

  function kindOf(entry) {
    if (entry.method === "POST" && entry.path === SUBMIT_PATH) return "submit";
    if (entry.path.startsWith(STATUS_PREFIX)) return "poll";
    if (entry.path.startsWith(IMAGE_PREFIX)) return "download";
    return "other";
  }

  function answerState(entry) {
    const answer = entry.response_json;
    return answer && typeof answer === "object" && typeof answer.status === "string"
      ? answer.status
      : null;
  }

  // ---- the journal --------------------------------------------------------------

  function journalFilters() {
    return { client: $("client-filter").value, path: $("path-filter").value };
  }

  function drawClientFilter() {
    const select = $("client-filter");
    const clients = [...new Set(view.journal.map((e) => e.client).filter((c) => c))].sort();
    const known = [...select.options].slice(1).map((o) => o.value);
    if (known.join("\n") === clients.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "every client"));
    for (const client of clients) select.append(el("option", { value: client }, client));
    select.value = clients.includes(chosen) ? chosen : "";
  }

  function drawJournal() {
    drawClientFilter();
    const filters = journalFilters();
    const journal = view.journal;
    const signature = JSON.stringify([
      journal.length,
      journal.length && entryKey(journal[0], 0),
      journal.length && entryKey(journal[journal.length - 1], journal.length - 1),
      filters,
      [...view.open],
    ]);
    if (signature === view.drawn.journal) return;
    view.drawn.journal = signature;

    const shown = [];
    for (let i = journal.length - 1; i >= 0 && shown.length < MAX_ROWS; i--) {
      const entry = journal[i];
      if (filters.client && entry.client !== filters.client) continue;
      if (filters.path && !entry.path.startsWith(filters.path)) continue;
      shown.push([entry, entryKey(entry, i)]);
    }
    const rows = [];
    for (const [entry, key] of shown) rows.push(...journalRows(entry, key));
    $("journal-rows").replaceChildren(...rows);
    const total = journal.length;
    $("journal-count").textContent =
      shown.length === total ? "(" + total + ")" : "(" + shown.length + " of " + total + " shown)";
  }

  function journalRows(entry, key) {
    const status = entry.status === null ? "none" : String(entry.status);
    const statusClass =
      entry.status === null || entry.status >= 500
        ? "bad"
        : entry.status >= 400
          ? "warn"
          : "good";
    const path = entry.path + (entry.query ? "?" + entry.query : "");
    const row = el(
      "tr",
      { className: "entry" + (view.open.has(key) ? " open" : "") },
      el("td", { className: "time", title: new Date(entry.at * 1000).toISOString() }, clockTime(entry.at)),
      el("td", {}, entry.method),
      el("td", { className: "path" }, path),
      el("td", {}, el("span", { className: "status " + statusClass }, status)),
      el("td", { className: "num" }, entry.duration_ms.toFixed(1) + " ms"),
      el("td", { className: entry.fault ? "fault" : "" }, entry.fault || ""),
      el("td", {}, entry.dropped ? "dropped" : ""),
      el("td", { title: entry.client || "" }, entry.client || "—"),
      el("td", { title: entry.job_id || "" }, entry.job_id ? jobLink(entry.job_id) : "—"),
    );
    row.dataset.key = key;
    row.addEventListener("click", (event) => {
      if (event.target.closest("button")) return;
      if (view.open.has(key)) view.open.delete(key);
      else view.open.add(key);
      drawJournal();
    });
    const rows = [row];
    const errors = refusalOf(entry);
    if (errors) rows.push(el("tr", { className: "errors" }, el("td", { colSpan: 9 }, errors)));
    if (view.open.has(key)) rows.push(el("tr", { className: "detail" }, el("td", { colSpan: 9 }, details(entry))));
    return rows;
  }

  /** The answer's error and its validation errors, in full, for a refused request. */
  function refusalOf(entry) {
    const answer = entry.response_json;
    if (!entry.status || entry.status < 400 || !answer || typeof answer !== "object") return null;
    const box = el("div", { className: "refusal" });
    if (typeof answer.error === "string") {
      box.append(el("div", {}, el("strong", {}, answer.code ? answer.code + ": " : ""), answer.error));
    }
    if (Array.isArray(answer.errors)) {
      const list = el("ul");
      for (const item of answer.errors) {
        if (!item || typeof item !== "object") continue;
        list.append(
          el(
            "li",
            {},
            el("code", {}, String(item.field ?? "")),
            " ",
            String(item.message ?? ""),
            item.allowed !== undefined ? el("span", { className: "muted" }, " (allowed: " + item.allowed + ")") : null,
          ),
        );
      }
      box.append(list);
    }
    return box.childNodes.length ? box : null;
  }

  function headerTable(headers) {
    const table = el("table", { className: "headers" });
    for (const [name, value] of Object.entries(headers || {})) {
      table.append(el("tr", {}, el("th", {}, name), el("td", {}, value)));
    }
    return table;
  }

  function details(entry) {
    return el(
      "div",
      { className: "details" },
      el(
        "div",
        {},
        el("h4", {}, "request"),
        el("p", { className: "muted" }, "worker " + entry.worker + (entry.scenario ? " · scenario " + entry.scenario : "")),
        headerTable(entry.headers),
        entry.body ? el("pre", {}, pretty(entry.json, entry.body)) : null,
      ),
      el(
        "div",
        {},
        el("h4", {}, "answer " + (entry.status ?? "(none)")),
        headerTable(entry.response_headers),
        entry.response_body ? el("pre", {}, pretty(entry.response_json, entry.response_body)) : null,
      ),
    );
  }

  function jobLink(jobId) {
    const button = el("button", { type: "button", className: "link", title: jobId }, short(jobId, 8));
    button.addEventListener("click", () => {
      const card = document.querySelector('[data-job="' + CSS.escape(jobId) + '"]');
      if (card) {
        card.scrollIntoView({ behavior: "smooth", block: "center" });
        card.classList.add("flash");
        setTimeout(() => card.classList.remove("flash"), 1200);
      }
    });
    return button;
  }

  // ---- jobs ---------------------------------------------------------------------

  function drawJobs() {
    const byJob = new Map();
    for (const entry of view.journal) {
      if (!entry.job_id) continue;
      if (!byJob.has(entry.job_id)) byJob.set(entry.job_id, []);
      byJob.get(entry.job_id).push(entry);
    }
    const jobs = [...view.jobs].sort((a, b) => b.created_at - a.created_at).slice(0, MAX_JOBS);
    const signature = JSON.stringify(
      jobs.map((j) => [j.id, j.state, j.status_requests, j.downloads, (byJob.get(j.id) || []).length]),
    );
    if (signature === view.drawn.jobs) return;
    view.drawn.jobs = signature;
    $("job-count").textContent = "(" + view.jobs.length + ")";
    if (!jobs.length) {
      $("jobs").replaceChildren(el("p", { className: "muted" }, "No jobs yet: submit one."));
      return;
    }
    $("jobs").replaceChildren(...jobs.map((job) => jobCard(job, byJob.get(job.id) || [])));
  }

  function jobCard(job, entries) {
    const request = job.request || {};
    const clients = [...new Set(entries.map((e) => e.client).filter((c) => c))];
    const card = el(
      "article",
      { className: "job" },
      el(
        "header",
        {},
        el("span", { className: "state " + job.state }, job.state),
        el("code", { className: "job-id", title: job.id }, job.id),
        el("span", { className: "muted" }, "scenario " + (job.scenario && job.scenario.name ? job.scenario.name : "(queued object)")),
        clients.length ? el("span", { className: "muted" }, "client " + clients.join(", ")) : null,
      ),
      el("blockquote", { className: "prompt" }, String(request.prompt ?? "")),
      el(
        "p",
        { className: "muted" },
        [request.width + "×" + request.height, (request.samples ?? 1) + " sample(s)", request.model_id]
          .filter((x) => x)
          .join(" · "),
      ),
      timeline(job, entries),
    );
    card.dataset.job = job.id;
    if (job.state === "SUCCESS") card.append(thumbnails(job));
    return card;
  }

  function timeline(job, entries) {
    const list = el("ol", { className: "timeline" });
    const sorted = [...entries].sort((a, b) => a.at - b.at);
    const start = sorted.length ? Math.min(sorted[0].at, job.created_at) : job.created_at;
    let polls = 0;
    let downloads = 0;
    for (const entry of sorted) {
      const kind = kindOf(entry);
      const answer = answerState(entry);
      let what;
      if (kind === "submit") what = "submit";
      else if (kind === "poll") what = "poll " + ++polls;
      else if (kind === "download") what = "download " + ++downloads + " (" + entry.path.split("/").pop() + ")";
      else what = entry.method + " " + entry.path;
      let result = entry.status === null ? "no answer" : String(entry.status);
      if (answer) result += " " + answer;
      const urls = entry.response_json && entry.response_json.download_urls;
      if (Array.isArray(urls)) result += ", " + urls.length + " image URL(s)";
      if (entry.fault) result += " · fault " + entry.fault;
      if (entry.dropped) result += " · dropped";
      list.append(
        el(
          "li",
          { className: kind },
          el("span", { className: "when" }, relative(entry.at - start)),
          el("span", { className: "what" }, what),
          el("span", { className: "arrow" }, "→"),
          el("span", { className: "result" }, result),
        ),
      );
    }
    const final =
      job.state === "PENDING"
        ? el("span", {}, "still PENDING")
        : el(
            "span",
            {},
            job.state + (job.finished_at ? " at " + relative(job.finished_at - start) : ""),
            job.error && job.state === "FAILURE" ? ": " + job.error : "",
          );
    list.append(el("li", { className: "final " + job.state }, el("span", { className: "when" }, ""), final));
    return list;
  }

  function thumbnails(job) {
    const strip = el("div", { className: "thumbnails" });
    const samples = Number(job.request && job.request.samples) || 1;
    for (let i = 0; i < samples && i < 10; i++) {
      const img = el("img", { alt: "image " + i + " of job " + job.id, className: "thumbnail", width: 96, height: 96 });
      img.dataset.sample = String(i);
      strip.append(img);
      const key = job.id + "/" + i;
      const known = view.thumbnails.get(key);
      if (known) {
        img.src = known;
        continue;
      }
      thumbnail(job.id, i)
        .then((url) => {
          view.thumbnails.set(key, url);
          img.src = url;
        })
        .catch((error) => {
          img.replaceWith(el("span", { className: "error" }, "image " + i + ": " + error.message));
        });
    }
    return strip;
  }

  async function thumbnail(jobId, sample) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers[TOKEN_HEADER] = token;
    const url = "/__mock/ui/images/" + encodeURIComponent(jobId) + "/" + sample + ".png";
    const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
    if (!response.ok) throw new Error(response.status + " " + response.statusText);
    return URL.createObjectURL(await response.blob());
  }

  // ---- the client report --------------------------------------------------------

  function drawReport() {
    const panel = $("report-panel");
    if (view.report === null || view.report === undefined) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    const signature = JSON.stringify(view.report);
    if (signature === view.drawn.report) return;
    view.drawn.report = signature;
    $("report").replaceChildren(...reportNodes(view.report));
  }

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
    $("queue-list").textContent = names.length ? names.join(", then ") : "nothing queued (the usual rules pick)";
  }

  // ---- polling ------------------------------------------------------------------

  async function refresh() {
    const [clock, journal, jobs, queue] = await Promise.all([
      admin("GET", "clock"),
      admin("GET", "journal"),
      admin("GET", "jobs"),
      admin("GET", "queue"),
    ]);
    if (view.report !== null) {
      try {
        view.report = await admin("GET", "report");
      } catch (error) {
        if (error.status !== 404) throw error;
        view.report = null; // this server has no live report
      }
    }
    view.clock = clock;
    view.journal = journal.entries;
    view.jobs = jobs.jobs;
    view.queue = queue.queue;
    drawClock();
    drawQueue();
    drawJournal();
    drawJobs();
    drawReport();
  }

  async function tick() {
    timer = null;
    try {
      await refresh();
      $("connection").textContent = "live · " + new Date().toLocaleTimeString();
      $("connection").className = "connection live";
    } catch (error) {
      if (error.status === 403) {
        askForToken(error.message);
        return;
      }
      $("connection").textContent = "not updating: " + error.message;
      $("connection").className = "connection down";
    }
    timer = setTimeout(tick, POLL_MS);
  }

  function poll() {
    if (timer !== null) clearTimeout(timer);
    tick();
  }

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
    const clock = await admin("POST", "clock", { advance: Number.isNaN(seconds) ? $("advance-seconds").value : seconds });
    return "The clock moved " + seconds + " s, to " + clock.time + ".";
  });
  control("freeze", async () => {
    const frozen = !(view.clock && view.clock.frozen);
    const clock = await admin("POST", "clock", { freeze: frozen });
    return frozen ? "The clock stands at " + clock.time + "." : "The clock runs on from " + clock.time + ".";
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

  $("client-filter").addEventListener("change", drawJournal);
  $("path-filter").addEventListener("input", drawJournal);

  async function loadScenarios() {
    const answer = await admin("GET", "scenarios");
    const select = $("scenario-select");
    select.replaceChildren(
      ...answer.scenarios.map((s) => el("option", { value: s.name, title: s.description || "" }, s.name)),
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

  // Defined last: the report's shape is the live report's (GET /__mock/report).
  function reportNodes(report) {
    return [el("pre", {}, JSON.stringify(report, null, 2))];
  }

  start();
})();
