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
.phase-tests { background: #00897b !important; }
.filters button { margin-right: 6px; padding: 3px 10px; border: 1px solid #b0b8c6; border-radius: 12px; background: #fff; cursor: pointer; }
.filters button[aria-pressed="true"] { background: #1565c0; color: #fff; border-color: #1565c0; }
tr.failure-detail td { background: #fcfcfd; }
dl.detail { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.detail dt { color: #5a6376; } dl.detail dd { margin: 0; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font: 12px/1.35 ui-monospace, monospace; }
pre.log { background: #f3f5f8; padding: 4px 6px; max-height: 240px; overflow: auto; }
code.command { display: block; background: #f3f5f8; padding: 4px 6px; font: 12px ui-monospace, monospace; word-break: break-all; }
#page-errors { color: #c62828; }
</style>
<script>
"use strict";
// Collects the page's own errors before anything else runs: shown on the page, and counted in
// <html data-page-errors> for tests that load it headless.
(function () {
  const errors = [];
  function note(text) {
    errors.push(String(text));
    document.documentElement.setAttribute("data-page-errors", String(errors.length));
    const show = () => {
      let list = document.getElementById("page-errors");
      if (!list) { list = document.createElement("ul"); list.id = "page-errors"; document.body.prepend(list); }
      const item = document.createElement("li");
      item.textContent = "page error: " + text;
      list.append(item);
    };
    if (document.body) show(); else document.addEventListener("DOMContentLoaded", show);
  }
  window.addEventListener("error", (event) => note(event.message || "error"));
  window.addEventListener("unhandledrejection", (event) => note("unhandled rejection: " + event.reason));
  const original = console.error.bind(console);
  console.error = (...args) => { note(args.join(" ")); original(...args); };
  document.documentElement.setAttribute("data-page-errors", "0");
})();
</script>
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

  const pool = report.pool || {};
  const connections = report.connections || {};
  const span = report.tests_span && typeof report.tests_span === "object" ? report.tests_span : null;
  const ns = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(ns, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  parts.push(el("h1", {}, ["Test run ", String(report.run_id || "")]));
  parts.push(el("p", { class: "meta" }, [
    "backend ", String(report.backend || "?"), ", isolation ", String(report.isolation || "?"),
    ", started ", String(report.started_at || "?"), ", harness ", String(report.harness_version || "?"), " ",
    el("span", { class: "badge " + verdict, id: "verdict" }, [verdict]),
  ]));
  const commandLine = Array.isArray(report.command_line) ? report.command_line.map(String) : [];
  parts.push(el("dl", { class: "detail", id: "run-command" }, [
    el("dt", {}, ["command"]), el("dd", {}, [el("code", { class: "command" }, [commandLine.length ? commandLine.join(" ") : "unknown"])]),
    el("dt", {}, ["options"]), el("dd", {}, [String(report.options || "unknown")]),
  ]));
  parts.push(el("div", { class: "cards" }, [
    ["tests", totals.total], ["passed", totals.passed], ["assertion failures", totals.assertion_failures],
    ["infrastructure failures", totals.infrastructure_failures], ["retries", report.retries],
    ["pool peak in use", pool.peak_in_use], ["pool waits", pool.waits], ["pool timeouts", pool.timeouts],
    ["connections peak open", connections.cap ? connections.peak_open + " of " + connections.cap : undefined],
  ].map(([label, value]) => el("div", { class: "card" }, [el("b", {}, [value === undefined ? "-" : value]), label]))));

  // The phases in their order, with the span the tests ran in where the tests phase belongs.
  parts.push(el("h2", {}, ["Phases"]));
  const segments = [];
  for (const p of phases) {
    if (span && p.name === "teardown") segments.push({ name: "tests", ok: true, duration_ms: Number(span.end_ms) - Number(span.start_ms), tests: true });
    segments.push(p);
  }
  if (span && !phases.some((p) => p.name === "teardown")) segments.push({ name: "tests", ok: true, duration_ms: Number(span.end_ms) - Number(span.start_ms), tests: true });
  const segmentTotal = segments.reduce((sum, p) => sum + Math.max(Number(p.duration_ms) || 0, 0), 0) || 1;
  parts.push(el("div", { class: "timeline", id: "phase-timeline" }, segments.map((p) => el("div", {
    class: p.tests ? "phase-tests" : p.ok ? "phase-ok" : "phase-failed",
    style: "width:" + Math.max(2, 100 * Math.max(Number(p.duration_ms) || 0, 0) / segmentTotal) + "%",
    title: p.name + ": " + ms(p.duration_ms) + (p.message ? " - " + p.message : ""),
  }, [p.name + " " + ms(p.duration_ms)]))));
  parts.push(table(["phase", "result", "duration", "fault", "detail"], segments.map((p) => el("tr", {}, [
    el("td", {}, [p.name]), el("td", {}, [p.ok ? "ok" : "FAILED"]), el("td", { class: "num" }, [ms(p.duration_ms)]),
    el("td", {}, [p.fault || ""]),
    el("td", {}, [p.tests ? "tests ran from " + ms(span.start_ms) + " to " + ms(span.end_ms) + " after the start" : p.message || ""]),
  ]))));

  function failureDetail(t) {
    const rows = [];
    const add = (label, node) => rows.push(el("dt", {}, [label]), el("dd", {}, [node]));
    const where = t.file ? String(t.file) + (Number(t.line) > 0 ? ":" + t.line : "") : "";
    add("kind", String(t.kind || "unknown") + (where ? " at " + where : ""));
    if (t.fault) add("fault", String(t.fault));
    if (t.expression) add("expression", el("pre", {}, [t.expression]));
    if (t.expansion) add("expansion", el("pre", {}, [t.expansion]));
    if (t.exception_type || t.exception_text)
      add("exception", el("pre", {}, [(t.exception_type ? t.exception_type + ": " : "") + String(t.exception_text || "")]));
    if (t.message) add("message", el("pre", {}, [t.message]));
    add("database", String(t.database || "none"));
    const log = Array.isArray(t.log) ? t.log.map(String) : [];
    const dropped = Number(t.log_dropped) || 0;
    add("log", log.length === 0 ? el("span", { class: "none" }, ["no log lines"]) : el("div", {}, [
      el("span", { class: "meta" }, ["last " + log.length + " lines" + (dropped ? ", " + dropped + " earlier left out" : "")]),
      el("pre", { class: "log" }, [log.join("\n")]),
    ]));
    add("rerun", t.rerun ? el("code", { class: "command rerun" }, [t.rerun]) : "unknown");
    return el("dl", { class: "detail" }, rows);
  }

  for (const [outcome, title] of [["infrastructure_failure", "Infrastructure failures"], ["assertion_failure", "Assertion failures"]]) {
    const failing = tests.filter((t) => t.outcome === outcome);
    parts.push(el("h2", {}, [title + " (" + failing.length + ")"]));
    parts.push(table(["test", "kind", "fault", "duration"], failing.flatMap((t) => [
      el("tr", { class: "failing-test row-" + outcome }, [
        el("td", {}, [t.name]), el("td", {}, [t.kind || ""]), el("td", {}, [t.fault || ""]),
        el("td", { class: "num" }, [ms(t.duration_ms)]),
      ]),
      el("tr", { class: "failure-detail" }, [el("td", { colspan: 4 }, [failureDetail(t)])]),
    ])));
  }

  parts.push(el("h2", {}, ["Faults by class"]));
  const faults = Object.entries(report.faults || {});
  parts.push(table(["fault class", "count"], faults.map(([name, count]) => el("tr", {}, [el("td", {}, [name]), el("td", { class: "num" }, [count])]))));

  // Connections in use and open, as steps: a count holds until the next sample.
  parts.push(el("h2", {}, ["Pool use over time"]));
  const samples = Array.isArray(report.pool_timeline) ? report.pool_timeline : [];
  if (samples.length === 0) {
    parts.push(el("p", { class: "none" }, ["no samples"]));
  } else {
    const width = 800, height = 200, left = 56, right = 16, top = 28, bottom = 44;
    const end = Math.max(...samples.map((s) => Number(s.at_ms) || 0), 1);
    const most = Math.max(...samples.map((s) => Math.max(Number(s.in_use) || 0, Number(s.size) || 0)), 1);
    const x = (at) => left + (width - left - right) * (Number(at) || 0) / end;
    const y = (count) => height - bottom - (height - top - bottom) * (Number(count) || 0) / most;
    const svg = svgEl("svg", { width: width, height: height, id: "pool-chart", role: "img" });
    svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, stroke: "#5a6376", class: "axis-x" }));
    svg.append(svgEl("line", { x1: left, y1: top, x2: left, y2: height - bottom, stroke: "#5a6376", class: "axis-y" }));
    for (const count of [...new Set([0, Math.round(most / 2), most])]) {
      svg.append(svgEl("text", { x: left - 6, y: y(count) + 4, "text-anchor": "end", "font-size": 11 }, count));
      svg.append(svgEl("line", { x1: left, y1: y(count), x2: width - right, y2: y(count), stroke: "#eef1f5" }));
    }
    for (const at of [0, end / 2, end]) svg.append(svgEl("text", { x: x(at), y: height - bottom + 16, "text-anchor": "middle", "font-size": 11 }, ms(at)));
    svg.append(svgEl("text", { x: left + (width - left - right) / 2, y: height - 8, "text-anchor": "middle", "font-size": 12, class: "axis-title" }, "time since the run started"));
    svg.append(svgEl("text", { x: 14, y: top + (height - top - bottom) / 2, "text-anchor": "middle", "font-size": 12, class: "axis-title",
      transform: "rotate(-90 14 " + (top + (height - top - bottom) / 2) + ")" }, "connections"));
    for (const [key, color] of [["size", "#90a4ae"], ["in_use", "#1565c0"]]) {
      const points = [];
      samples.forEach((s, i) => {
        if (i > 0) points.push(x(s.at_ms).toFixed(1) + "," + y(samples[i - 1][key]).toFixed(1));
        points.push(x(s.at_ms).toFixed(1) + "," + y(s[key]).toFixed(1));
      });
      svg.append(svgEl("polyline", { fill: "none", stroke: color, "stroke-width": 2, class: "step-" + key, points: points.join(" ") }));
    }
    svg.append(svgEl("text", { x: left, y: 16, "font-size": 12 },
      "connections in use (blue) and open (grey); peak in use " + (pool.peak_in_use === undefined ? "?" : pool.peak_in_use) + ", over " + ms(end)));
    parts.push(svg);
  }

  // Every test, filtered by outcome (the URL's #outcome=NAME picks one when the page opens).
  parts.push(el("h2", {}, ["Tests (" + tests.length + ")"]));
  const outcomes = ["all", ...new Set(tests.map((t) => String(t.outcome)))];
  const filters = el("div", { class: "filters", id: "outcome-filters" }, outcomes.map((name) => el("button", { type: "button", "data-outcome": name, "aria-pressed": "false" }, [name.replace(/_/g, " ")])));
  parts.push(filters);
  const longest = Math.max(...tests.map((t) => Number(t.duration_ms) || 0), 1);
  const rows = tests.map((t) => el("tr", { class: "test-row row-" + String(t.outcome), "data-outcome": String(t.outcome) }, [
    el("td", {}, [t.name]), el("td", {}, [t.outcome]), el("td", { class: "num" }, [ms(t.duration_ms)]),
    el("td", { style: "width:40%" }, [el("div", { class: "bar", style: "width:" + (100 * (Number(t.duration_ms) || 0) / longest) + "%" })]),
  ]));
  parts.push(table(["test", "outcome", "duration", ""], rows));
  function showOutcome(name) {
    const chosen = outcomes.includes(name) ? name : "all";
    for (const button of filters.children) button.setAttribute("aria-pressed", String(button.getAttribute("data-outcome") === chosen));
    for (const row of rows) row.hidden = chosen !== "all" && row.getAttribute("data-outcome") !== chosen;
    document.documentElement.setAttribute("data-outcome-filter", chosen);
  }
  filters.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button) showOutcome(button.getAttribute("data-outcome"));
  });
  const wanted = /(?:^|[#&])outcome=([a-z_]+)/.exec(location.hash);
  showOutcome(wanted ? wanted[1] : "all");

  root.replaceChildren(...parts);
  document.documentElement.setAttribute("data-rendered", "true");
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
