// The journal panel: every exchange, newest first, filtered by client and path; a refused
// request's errors in full; a click shows its headers and bodies.

import {
  $,
  IMAGE_PREFIX,
  STATUS_PREFIX,
  SUBMIT_PATH,
  clockTime,
  el,
  pretty,
  short,
} from "./dom.js";

const MAX_ROWS = 300; // rows drawn

/** An entry's name on the page: its seq (which starts over when the journal is cleared)
 * and its time. */
function entryKey(entry, index) {
  return (entry.seq ?? "i" + index) + "@" + entry.at;
}

export function kindOf(entry) {
  if (entry.method === "POST" && entry.path === SUBMIT_PATH) return "submit";
  if (entry.path.startsWith(STATUS_PREFIX)) return "poll";
  if (entry.path.startsWith(IMAGE_PREFIX)) return "download";
  return "other";
}

export function answerState(entry) {
  const answer = entry.response_json;
  return answer && typeof answer === "object" && typeof answer.status === "string"
    ? answer.status
    : null;
}

// ---- the journal --------------------------------------------------------------

function journalFilters() {
  return { client: $("client-filter").value, path: $("path-filter").value };
}

function drawClientFilter(view) {
  const select = $("client-filter");
  const clients = [...new Set(view.journal.map((e) => e.client).filter((c) => c))].sort();
  const known = [...select.options].slice(1).map((o) => o.value);
  if (known.join("\n") === clients.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "every client"));
  for (const client of clients) select.append(el("option", { value: client }, client));
  select.value = clients.includes(chosen) ? chosen : "";
}

export function drawJournal(view) {
  drawClientFilter(view);
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
  for (const [entry, key] of shown) rows.push(...journalRows(view, entry, key));
  $("journal-rows").replaceChildren(...rows);
  const total = journal.length;
  $("journal-count").textContent =
    shown.length === total ? "(" + total + ")" : "(" + shown.length + " of " + total + " shown)";
}

function journalRows(view, entry, key) {
  const status = entry.status === null ? "none" : String(entry.status);
  const statusClass =
    entry.status === null || entry.status >= 500 ? "bad" : entry.status >= 400 ? "warn" : "good";
  const path = entry.path + (entry.query ? "?" + entry.query : "");
  const row = el(
    "tr",
    { className: "entry" + (view.open.has(key) ? " open" : "") },
    el(
      "td",
      { className: "time", title: new Date(entry.at * 1000).toISOString() },
      clockTime(entry.at),
    ),
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
  if (entry.seq !== undefined && entry.seq !== null) row.dataset.seq = String(entry.seq);
  row.tabIndex = 0;
  const toggle = () => {
    if (view.open.has(key)) view.open.delete(key);
    else view.open.add(key);
    drawJournal(view);
    document.querySelector('tr.entry[data-key="' + CSS.escape(key) + '"]')?.focus();
  };
  row.addEventListener("click", (event) => {
    if (!event.target.closest("button")) toggle();
  });
  row.addEventListener("keydown", (event) => {
    if (event.target === row && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      toggle();
    }
  });
  const rows = [row];
  const errors = refusalOf(entry);
  if (errors) rows.push(el("tr", { className: "errors" }, el("td", { colSpan: 9 }, errors)));
  if (view.open.has(key))
    rows.push(el("tr", { className: "detail" }, el("td", { colSpan: 9 }, details(entry))));
  return rows;
}

/** The answer's error and its validation errors, in full, for a refused request. */
function refusalOf(entry) {
  const answer = entry.response_json;
  if (!entry.status || entry.status < 400 || !answer || typeof answer !== "object") return null;
  const box = el("div", { className: "refusal" });
  if (typeof answer.error === "string") {
    box.append(
      el("div", {}, el("strong", {}, answer.code ? answer.code + ": " : ""), answer.error),
    );
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
          item.allowed !== undefined
            ? el("span", { className: "muted" }, " (allowed: " + item.allowed + ")")
            : null,
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
      el(
        "p",
        { className: "muted" },
        "worker " + entry.worker + (entry.scenario ? " · scenario " + entry.scenario : ""),
      ),
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

export function jobLink(jobId) {
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
