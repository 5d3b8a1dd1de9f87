#pragma once

#include <string>
#include <string_view>

namespace gamebot::harness {

// One self-contained HTML page (no network: inline style and script) showing a JSON run report
// (RunReport::to_json()): verdict and totals, the run's command line and options, a phase bar
// with the span the tests ran in, failures split into infrastructure and assertion failures (each
// with its kind, file:line, expression and expansion or exception, fault, database, log and
// rerun command), faults by class, the pool's use over time as a stepped chart with labelled
// axes, and every test's duration with filters by outcome (#outcome=NAME in the URL picks one).
// The page's own script errors are listed on it and counted in <html data-page-errors>. The JSON is
// embedded as data and rendered by the page's script with DOM text nodes, so test names and
// messages cannot inject markup. `report_json` must be a JSON object (the caller validates it; the
// page shows a message instead of the report if it is not). Pure; thread-safe.
std::string render_report_html(std::string_view report_json);

}  // namespace gamebot::harness
