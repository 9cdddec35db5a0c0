// The jobs panel: each job (newest first) with its prompt, its timeline from the journal
// (submit, polls and their answers, downloads, the final state, times from the submit) and
// a SUCCESS job's images, fetched with the token and shown as blob: URLs.

import { $, el, relative, tokenHeaders } from "./dom.js";
import { answerState, jobLink, kindOf } from "./journal.js";

const MAX_JOBS = 50; // cards drawn

export function drawJobs(view) {
  const byJob = new Map();
  for (const entry of view.journal) {
    if (!entry.job_id) continue;
    if (!byJob.has(entry.job_id)) byJob.set(entry.job_id, []);
    byJob.get(entry.job_id).push(entry);
  }
  const client = $("client-filter").value; // the journal's client filter picks jobs too
  const jobs = [...view.jobs]
    .filter((j) => !client || (byJob.get(j.id) || []).some((e) => e.client === client))
    .sort((a, b) => b.created_at - a.created_at)
    .slice(0, MAX_JOBS);
  const signature = JSON.stringify([
    client,
    jobs.map((j) => [j.id, j.state, j.status_requests, j.downloads, byJob.get(j.id)?.length]),
  ]);
  if (signature === view.drawn.jobs) return;
  view.drawn.jobs = signature;
  const total = view.jobs.length;
  $("job-count").textContent =
    jobs.length === total ? "(" + total + ")" : "(" + jobs.length + " of " + total + " shown)";
  if (!jobs.length) {
    const none = total ? "No jobs of this client." : "No jobs yet: submit one.";
    $("jobs").replaceChildren(el("p", { className: "muted" }, none));
    return;
  }
  $("jobs").replaceChildren(...jobs.map((job) => jobCard(view, job, byJob.get(job.id) || [])));
}

function jobCard(view, job, entries) {
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
      el(
        "span",
        { className: "muted" },
        "scenario " + (job.scenario && job.scenario.name ? job.scenario.name : "(queued object)"),
      ),
      clients.length ? el("span", { className: "muted" }, "client " + clients.join(", ")) : null,
    ),
    el("blockquote", { className: "prompt" }, String(request.prompt ?? "")),
    el(
      "p",
      { className: "muted" },
      [
        request.width + "×" + request.height,
        (request.samples ?? 1) + " sample(s)",
        request.model_id,
      ]
        .filter((x) => x)
        .join(" · "),
    ),
    timeline(job, entries),
  );
  card.dataset.job = job.id;
  if (job.state === "SUCCESS") card.append(thumbnails(view, job));
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
    else if (kind === "download")
      what = "download " + ++downloads + " (" + entry.path.split("/").pop() + ")";
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
          job.state === "FAILURE" ? ": " + failureOf(job, sorted) : "",
        );
  list.append(
    el("li", { className: "final " + job.state }, el("span", { className: "when" }, ""), final),
  );
  return list;
}

/** Why a job failed: as its client was told, else as the job says. */
function failureOf(job, entries) {
  const told = entries.filter((e) => answerState(e) === "FAILURE" && e.response_json.id === job.id);
  const said = told.length ? told[told.length - 1].response_json.error : null;
  return String(said || job.error || (job.scenario && job.scenario.error) || "no reason given");
}

function thumbnails(view, job) {
  const strip = el("div", { className: "thumbnails" });
  const samples = Number(job.request && job.request.samples) || 1;
  for (let i = 0; i < samples && i < 10; i++) {
    const img = el("img", {
      alt: "image " + i + " of job " + job.id,
      className: "thumbnail",
      width: 96,
      height: 96,
    });
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
  const headers = tokenHeaders();
  const url = "/__mock/ui/thumbnails/" + encodeURIComponent(jobId) + "/" + sample + ".png";
  const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(response.status + " " + response.statusText);
  return URL.createObjectURL(await response.blob());
}
