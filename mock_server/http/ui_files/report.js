// The client report panel (GET /__mock/report): per client, each property held, broken
// (with the exchanges that broke it, as links to the journal) or not judged (with why),
// then each of its jobs the same way; what the clients are held to can be changed here.

import { $, el } from "./dom.js";
import { jobLink } from "./journal.js";

/** The report's address with the panel's poll floor and deadline. */
export function reportPath() {
  const query = new URLSearchParams();
  for (const [id, name] of [
    ["report-poll-floor", "poll_floor"],
    ["report-deadline", "deadline"],
  ]) {
    const value = $(id).value.trim();
    if (value) query.set(name, value);
  }
  const text = query.toString();
  return "report" + (text ? "?" + text : "");
}

export function drawReport(view) {
  const panel = $("report-panel");
  panel.hidden = view.report === null || view.report === undefined;
  if (panel.hidden) return;
  const signature = JSON.stringify([view.report, view.reportError]);
  if (signature === view.drawn.report) return;
  view.drawn.report = signature;
  $("report-error").textContent = view.reportError || "";
  if (view.reportError) return; // the last good report stays until the values are fixed
  const report = view.report;
  $("report-poll-floor").placeholder = String(report.poll_floor);
  $("report-deadline").placeholder = String(report.deadline);
  const clients = report.clients || [];
  const broken = clients.filter((c) => c.broken).length;
  const journal = report.journal || {};
  $("report-summary").textContent =
    clients.length +
    " client(s), " +
    (broken ? broken + " breaking a property" : "none breaking a property") +
    " · " +
    journal.entries +
    " exchanges judged" +
    (journal.dropped ? " · the journal's bound dropped " + journal.dropped + " before them" : "");
  const described = report.properties || {};
  $("report").replaceChildren(
    ...(clients.length
      ? clients.map((client) => clientPart(view, client, described))
      : [el("p", { className: "muted" }, "No client has sent anything yet.")]),
  );
}

function clientPart(view, client, described) {
  const name = client.client || "(no API key)";
  const jobs = client.jobs || [];
  const part = foldable(
    view,
    "client " + name,
    client.broken,
    el("span", { className: "verdict " + (client.broken ? "broken" : "held") }, brokenOr(client)),
    el("strong", {}, name),
    el(
      "span",
      { className: "muted" },
      client.exchanges + " exchange(s), " + jobs.length + " job(s)",
    ),
    client.client ? filterButton(client.client) : null,
  );
  if (client.incomplete) part.append(el("p", { className: "error" }, client.incomplete));
  part.append(verdictTable(client.properties || {}, described));
  for (const job of jobs) {
    const jobPart = foldable(
      view,
      "job " + job.id,
      job.broken,
      el("span", { className: "verdict " + (job.broken ? "broken" : "held") }, brokenOr(job)),
      el("span", {}, "job "),
      jobLink(job.id),
      el("span", { className: "muted" }, job.end ? "ended " + job.end : "not ended"),
      el("span", { className: "muted" }, counts(job.properties || {})),
    );
    jobPart.classList.add("report-job");
    jobPart.append(verdictTable(job.properties || {}, described));
    part.append(jobPart);
  }
  return part;
}

function brokenOr(part) {
  return part.broken ? "broken" : "nothing broken";
}

function counts(verdicts) {
  const tally = {};
  for (const verdict of Object.values(verdicts))
    tally[verdict.state] = (tally[verdict.state] || 0) + 1;
  return Object.entries(tally)
    .map(([state, n]) => n + " " + state.replace("_", " "))
    .join(", ");
}

/** A <details> that stays open or shut across redraws as the user left it. */
function foldable(view, key, openAtFirst, ...summary) {
  const details = el("details", { className: "report-part" }, el("summary", {}, ...summary));
  details.open = view.reportOpen.has(key) ? view.reportOpen.get(key) : openAtFirst;
  details.addEventListener("toggle", () => view.reportOpen.set(key, details.open));
  return details;
}

function verdictTable(verdicts, described) {
  const table = el("table", { className: "report" });
  for (const [name, verdict] of Object.entries(verdicts)) {
    const seqs = Array.isArray(verdict.seqs) ? verdict.seqs : [];
    table.append(
      el(
        "tr",
        { className: "verdict-row " + verdict.state },
        el("th", { title: described[name] || "" }, name),
        el("td", {}, el("span", { className: "verdict " + verdict.state }, verdict.state)),
        el("td", {}, verdict.why || ""),
        el("td", {}, ...seqs.map(exchangeLink)),
      ),
    );
  }
  return table;
}

function filterButton(client) {
  const button = el("button", { type: "button", className: "link" }, "show in the journal");
  button.addEventListener("click", () => {
    $("client-filter").value = client;
    $("client-filter").dispatchEvent(new Event("change"));
    $("journal-panel").scrollIntoView({ behavior: "smooth" });
  });
  return button;
}

/** A button that opens exchange number `seq` in the journal (clearing its filters). */
function exchangeLink(seq) {
  const button = el("button", { type: "button", className: "link seq" }, "#" + seq);
  const selector = 'tr.entry[data-seq="' + CSS.escape(String(seq)) + '"]';
  button.addEventListener("click", () => {
    if (!document.querySelector(selector)) {
      $("client-filter").value = "";
      $("path-filter").value = "";
      $("client-filter").dispatchEvent(new Event("change"));
    }
    const row = document.querySelector(selector);
    if (!row) return; // dropped from the journal, or past the rows drawn
    if (!row.classList.contains("open")) row.click();
    const opened = document.querySelector(selector);
    opened.scrollIntoView({ behavior: "smooth", block: "center" });
    opened.focus();
  });
  return button;
}
