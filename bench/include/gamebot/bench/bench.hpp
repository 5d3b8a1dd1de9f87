#pragma once

// A small benchmark framework for gamebot-bench: each benchmark registers a
// function that measures figures and reports each one beside a baseline
// measured in the same run. No timing is ever asserted; "meets" only records
// whether the figure reached its target.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gamebot::bench {

struct Baseline {
  std::string name;  // what the baseline measured ("raw sqlite3 insert")
  double value = 0;  // in the same unit as the figure
};

struct Figure {
  std::string name;                  // "serializers/binary/encode/small"
  double value = 0;                  // the measurement
  std::string unit;                  // "values/s", "us", "MB/s", ...
  std::optional<Baseline> baseline;  // measured in the same run
  std::optional<double> ratio;       // value / baseline.value
  std::string target;                // human-readable target ("ratio >= 0.9")
  std::optional<bool> meets;         // whether the target is met; empty if none
};

class Context {
 public:
  explicit Context(bool quick) : quick_(quick) {}
  // True under --quick: benchmarks shrink their workloads to finish fast.
  bool quick() const noexcept { return quick_; }
  // Picks the full or the quick size of a workload.
  template <typename T>
  T size(T full, T quick_size) const {
    return quick_ ? quick_size : full;
  }
  void report(Figure figure) { figures_.push_back(std::move(figure)); }
  const std::vector<Figure>& figures() const noexcept { return figures_; }

 private:
  bool quick_;
  std::vector<Figure> figures_;
};

using BenchFunction = std::function<void(Context&)>;

// Registers a benchmark under a name; used through GAMEBOT_BENCHMARK.
struct Registrar {
  Registrar(const char* name, BenchFunction function);
};

// A rate figure where higher is better, with the ratio against the baseline
// and a minimum ratio as the target.
Figure rate_vs_baseline(std::string name, double value, std::string unit, std::string baseline_name,
                        double baseline_value, double min_ratio);

// A figure with an absolute upper bound as its target (latencies, per-op costs).
Figure at_most(std::string name, double value, std::string unit, double limit,
               std::optional<Baseline> baseline = std::nullopt);

// A figure with an absolute lower bound as its target (throughputs).
Figure at_least(std::string name, double value, std::string unit, double limit,
                std::optional<Baseline> baseline = std::nullopt);

// Seconds elapsed while running `work` once.
double seconds(const std::function<void()>& work);

}  // namespace gamebot::bench

#define GAMEBOT_BENCH_CONCAT2(a, b) a##b
#define GAMEBOT_BENCH_CONCAT(a, b) GAMEBOT_BENCH_CONCAT2(a, b)
// `context` names the function's parameter, so it cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define GAMEBOT_BENCHMARK(name, context)                                                       \
  static void GAMEBOT_BENCH_CONCAT(gamebot_bench_fn_, __LINE__)(::gamebot::bench::Context&);   \
  static const ::gamebot::bench::Registrar GAMEBOT_BENCH_CONCAT(gamebot_bench_reg_, __LINE__)( \
      (name), &GAMEBOT_BENCH_CONCAT(gamebot_bench_fn_, __LINE__));                             \
  static void GAMEBOT_BENCH_CONCAT(gamebot_bench_fn_, __LINE__)(::gamebot::bench::Context & context)
// NOLINTEND(bugprone-macro-parentheses)
