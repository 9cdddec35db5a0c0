// The client report panel: GET /__mock/report, per client and per job, each property held,
// broken (with the exchanges that broke it) or not judged (with why).

import { $, el } from "./dom.js";

export function drawReport(view) {
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

// Defined last: the report's shape is the live report's (GET /__mock/report).
function reportNodes(report) {
  return [el("pre", {}, JSON.stringify(report, null, 2))];
}
