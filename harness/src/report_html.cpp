// The HTML run report page (see report_html.hpp).
#include "gamebot/harness/report_html.hpp"

namespace gamebot::harness {

namespace {

constexpr std::string_view kHead = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GameBot test run report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2433; background: #fafbfc; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #5a6376; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff; font-weight: 600; }
.passed { background: #2e7d32; } .failed { background: #c62828; }
.infrastructure_failure { background: #ef6c00; } .aborted { background: #6a1b9a; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.timeline { display: flex; height: 28px; border: 1px solid #dde1e8; border-radius: 4px; overflow: hidden; background: #fff; }
.timeline div { color: #fff; font-size: 11px; white-space: nowrap; overflow: hidden; padding: 6px 4px; box-sizing: border-box; }
.phase-ok { background: #1565c0; } .phase-ok:nth-child(even) { background: #42a5f5; } .phase-failed { background: #c62828; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { border: 1px solid #dde1e8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { height: 10px; background: #42a5f5; min-width: 1px; }
tr.row-assertion_failure .bar { background: #c62828; } tr.row-infrastructure_failure .bar { background: #ef6c00; }
tr.row-assertion_failure td:first-child { border-left: 4px solid #c62828; } tr.row-infrastructure_failure td:first-child { border-left: 4px solid #ef6c00; }
.none { color: #5a6376; font-style: italic; }
svg { background: #fff; border: 1px solid #dde1e8; }
</style>
</head>
<body>
<main id="report"><p class="none">Rendering the report...</p></main>
<script type="application/json" id="report-data">)html";

constexpr std::string_view kTail = R"html(</script>
<script>
"use strict";
(function () {
  const root = document.getElementById("report");
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children || []) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function ms(value) {
    const v = Number(value) || 0;
    return v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(1) + " ms";
  }
  function table(headers, rows) {
    if (rows.length === 0) return el("p", { class: "none" }, ["none"]);
    return el("table", {}, [
      el("thead", {}, [el("tr", {}, headers.map((h) => el("th", {}, [h])))]),
      el("tbody", {}, rows),
    ]);
  }
  let report;
  try {
    report = JSON.parse(document.getElementById("report-data").textContent);
    if (report === null || typeof report !== "object" || Array.isArray(report)) throw new Error("not a JSON object");
  } catch (error) {
    root.replaceChildren(el("h1", {}, ["Not a run report"]), el("p", {}, [String(error.message)]));
    return;
  }
  const tests = Array.isArray(report.tests) ? report.tests : [];
  const phases = Array.isArray(report.phases) ? report.phases : [];
  const totals = report.totals || {};
  const verdict = String(report.verdict || "unknown");
  const parts = [];

  parts.push(el("h1", {}, ["Test run ", String(report.run_id || "")]));
  parts.push(el("p", { class: "meta" }, [
    "backend ", String(report.backend || "?"), ", isolation ", String(report.isolation || "?"),
    ", started ", String(report.started_at || "?"), ", harness ", String(report.harness_version || "?"), " ",
    el("span", { class: "badge " + verdict, id: "verdict" }, [verdict]),
  ]));
  parts.push(el("div", { class: "cards" }, [
    ["tests", totals.total], ["passed", totals.passed], ["assertion failures", totals.assertion_failures],
    ["infrastructure failures", totals.infrastructure_failures], ["retries", report.retries],
    ["pool peak in use", (report.pool || {}).peak_in_use], ["pool waits", (report.pool || {}).waits],
    ["pool timeouts", (report.pool || {}).timeouts],
  ].map(([label, value]) => el("div", { class: "card" }, [el("b", {}, [value === undefined ? "-" : value]), label]))));

  parts.push(el("h2", {}, ["Phases"]));
  const phaseTotal = phases.reduce((sum, p) => sum + (Number(p.duration_ms) || 0), 0) || 1;
  parts.push(el("div", { class: "timeline", id: "phase-timeline" }, phases.map((p) => el("div", {
    class: p.ok ? "phase-ok" : "phase-failed",
    style: "width:" + Math.max(2, 100 * (Number(p.duration_ms) || 0) / phaseTotal) + "%",
    title: p.name + ": " + ms(p.duration_ms) + (p.message ? " - " + p.message : ""),
  }, [p.name + " " + ms(p.duration_ms)]))));
  parts.push(table(["phase", "result", "duration", "fault", "detail"], phases.map((p) => el("tr", {}, [
    el("td", {}, [p.name]), el("td", {}, [p.ok ? "ok" : "FAILED"]), el("td", { class: "num" }, [ms(p.duration_ms)]),
    el("td", {}, [p.fault || ""]), el("td", {}, [p.message || ""]),
  ]))));

  for (const [outcome, title] of [["infrastructure_failure", "Infrastructure failures"], ["assertion_failure", "Assertion failures"]]) {
    const failing = tests.filter((t) => t.outcome === outcome);
    parts.push(el("h2", {}, [title + " (" + failing.length + ")"]));
    parts.push(table(["test", "fault", "message", "duration"], failing.map((t) => el("tr", { class: "failing-test row-" + outcome }, [
      el("td", {}, [t.name]), el("td", {}, [t.fault || ""]), el("td", {}, [t.message || ""]),
      el("td", { class: "num" }, [ms(t.duration_ms)]),
    ]))));
  }

  parts.push(el("h2", {}, ["Faults by class"]));
  const faults = Object.entries(report.faults || {});
  parts.push(table(["fault class", "count"], faults.map(([name, count]) => el("tr", {}, [el("td", {}, [name]), el("td", { class: "num" }, [count])]))));

  parts.push(el("h2", {}, ["Pool use over time"]));
  const samples = Array.isArray(report.pool_timeline) ? report.pool_timeline : [];
  if (samples.length === 0) {
    parts.push(el("p", { class: "none" }, ["no samples"]));
  } else {
    const ns = "http://www.w3.org/2000/svg";
    const width = 800, height = 160, pad = 24;
    const end = Math.max(...samples.map((s) => Number(s.at_ms) || 0), 1);
    const top = Math.max(...samples.map((s) => Math.max(Number(s.in_use) || 0, Number(s.size) || 0)), 1);
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", width); svg.setAttribute("height", height); svg.setAttribute("id", "pool-chart");
    for (const [key, color] of [["size", "#90a4ae"], ["in_use", "#1565c0"]]) {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("fill", "none"); line.setAttribute("stroke", color); line.setAttribute("stroke-width", "2");
      line.setAttribute("points", samples.map((s) =>
        (pad + (width - 2 * pad) * (Number(s.at_ms) || 0) / end).toFixed(1) + "," +
        (height - pad - (height - 2 * pad) * (Number(s[key]) || 0) / top).toFixed(1)).join(" "));
      svg.append(line);
    }
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", pad); label.setAttribute("y", 16); label.setAttribute("font-size", "12");
    label.textContent = "connections in use (blue) and open (grey); max " + top + ", over " + ms(end);
    svg.append(label);
    parts.push(svg);
  }

  parts.push(el("h2", {}, ["Tests (" + tests.length + ")"]));
  const longest = Math.max(...tests.map((t) => Number(t.duration_ms) || 0), 1);
  parts.push(table(["test", "outcome", "duration", ""], tests.map((t) => el("tr", { class: "row-" + String(t.outcome) }, [
    el("td", {}, [t.name]), el("td", {}, [t.outcome]), el("td", { class: "num" }, [ms(t.duration_ms)]),
    el("td", { style: "width:40%" }, [el("div", { class: "bar", style: "width:" + (100 * (Number(t.duration_ms) || 0) / longest) + "%" })]),
  ]))));

  root.replaceChildren(...parts);
})();
</script>
</body>
</html>
)html";

}  // namespace

std::string render_report_html(std::string_view report_json) {
  std::string page;
  page.reserve(kHead.size() + report_json.size() + kTail.size() + 64);
  page += kHead;
  // '<' can only occur inside JSON strings, where \u003c means the same; without any '<' the
  // data cannot end its <script> element or open a comment.
  for (char c : report_json) {
    if (c == '<') {
      page += "\\u003c";
    } else {
      page += c;
    }
  }
  page += kTail;
  return page;
}

}  // namespace gamebot::harness
