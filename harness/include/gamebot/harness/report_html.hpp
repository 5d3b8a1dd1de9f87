#pragma once

#include <string>
#include <string_view>

namespace gamebot::harness {

// One self-contained HTML page (no network: inline style and script) showing a JSON run report
// (RunReport::to_json()): verdict and totals, a phase timeline, failures split into
// infrastructure and assertion failures, per-test durations, the pool's use over time and faults
// by class. The JSON is embedded as data and rendered by the page's script with DOM text nodes,
// so test names and messages cannot inject markup. `report_json` must be a JSON object (the
// caller validates it; the page shows a message instead of the report if it is not). Pure;
// thread-safe.
std::string render_report_html(std::string_view report_json);

}  // namespace gamebot::harness
