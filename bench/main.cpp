#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gamebot/bench/bench.hpp"

namespace gamebot::bench {
namespace {

std::map<std::string, BenchFunction>& registry() {
  static std::map<std::string, BenchFunction> benches;
  return benches;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string json_number(double v) {
  return fmt::format("{:.6g}", v);
}

void write_json(const std::string& path, const std::vector<Figure>& figures) {
  std::ofstream out(path);
  out << "[\n";
  for (std::size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    out << "  {\"name\": \"" << json_escape(f.name) << "\", \"value\": " << json_number(f.value)
        << ", \"unit\": \"" << json_escape(f.unit) << "\", \"baseline\": ";
    if (f.baseline) {
      out << "{\"name\": \"" << json_escape(f.baseline->name)
          << "\", \"value\": " << json_number(f.baseline->value) << "}";
    } else {
      out << "null";
    }
    out << ", \"ratio\": " << (f.ratio ? json_number(*f.ratio) : "null") << ", \"target\": \""
        << json_escape(f.target)
        << "\", \"meets\": " << (f.meets ? (*f.meets ? "true" : "false") : "null") << "}"
        << (i + 1 < figures.size() ? ",\n" : "\n");
  }
  out << "]\n";
}

void print_table(const std::vector<Figure>& figures) {
  fmt::print("{:<52} {:>14} {:<10} {:>14} {:>8}  {:<22} {}\n", "figure", "value", "unit",
             "baseline", "ratio", "target", "meets");
  for (const Figure& f : figures) {
    fmt::print("{:<52} {:>14.6g} {:<10} {:>14} {:>8}  {:<22} {}\n", f.name, f.value, f.unit,
               f.baseline ? fmt::format("{:.6g}", f.baseline->value) : "-",
               f.ratio ? fmt::format("{:.3f}", *f.ratio) : "-", f.target,
               f.meets ? (*f.meets ? "yes" : "NO") : "-");
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: gamebot-bench [--filter SUBSTRING] [--json FILE] [--quick] [--list]\n");
  return 2;
}

}  // namespace

Registrar::Registrar(const char* name, BenchFunction function) {
  registry().emplace(name, std::move(function));
}

Figure rate_vs_baseline(std::string name, double value, std::string unit, std::string baseline_name,
                        double baseline_value, double min_ratio) {
  Figure f;
  f.name = std::move(name);
  f.value = value;
  f.unit = std::move(unit);
  f.baseline = Baseline{std::move(baseline_name), baseline_value};
  f.ratio = baseline_value > 0 ? value / baseline_value : 0.0;
  f.target = fmt::format("ratio >= {:g}", min_ratio);
  f.meets = *f.ratio >= min_ratio;
  return f;
}

Figure at_most(std::string name, double value, std::string unit, double limit,
               std::optional<Baseline> baseline) {
  Figure f;
  f.name = std::move(name);
  f.value = value;
  f.target = fmt::format("<= {:g} {}", limit, unit);
  f.unit = std::move(unit);
  if (baseline) {
    f.ratio = baseline->value > 0 ? value / baseline->value : 0.0;
    f.baseline = std::move(baseline);
  }
  f.meets = value <= limit;
  return f;
}

Figure at_least(std::string name, double value, std::string unit, double limit,
                std::optional<Baseline> baseline) {
  Figure f;
  f.name = std::move(name);
  f.value = value;
  f.target = fmt::format(">= {:g} {}", limit, unit);
  f.unit = std::move(unit);
  if (baseline) {
    f.ratio = baseline->value > 0 ? value / baseline->value : 0.0;
    f.baseline = std::move(baseline);
  }
  f.meets = value >= limit;
  return f;
}

double seconds(const std::function<void()>& work) {
  auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace gamebot::bench

int main(int argc, char** argv) {
  using namespace gamebot::bench;
  std::string filter;
  std::string json_path;
  bool quick = false;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
      filter = argv[++i];
    } else if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      json_path = argv[++i];
    } else if (std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (std::strcmp(argv[i], "--list") == 0) {
      list = true;
    } else {
      return usage();
    }
  }
  std::vector<Figure> all;
  int failures = 0;
  for (auto& [name, function] : registry()) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    if (list) {
      fmt::print("{}\n", name);
      continue;
    }
    fmt::print(stderr, "running {}{}\n", name, quick ? " (quick)" : "");
    Context context(quick);
    try {
      function(context);
    } catch (const std::exception& e) {
      fmt::print(stderr, "benchmark {} failed: {}\n", name, e.what());
      ++failures;
    }
    all.insert(all.end(), context.figures().begin(), context.figures().end());
  }
  if (list) return 0;
  print_table(all);
  if (!json_path.empty()) write_json(json_path, all);
  return failures == 0 ? 0 : 1;
}
