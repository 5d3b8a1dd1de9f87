#include "gamebot/serializers/conformance.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include "gamebot/serializers/internal/golden.hpp"
#include "gamebot/serializers/type_tag.hpp"

namespace gamebot::serializers {
namespace {

using Clock = std::chrono::steady_clock;

// Collects the outcome of one check; the first failures keep their details.
class CheckBuilder {
 public:
  CheckBuilder(CheckKind kind, std::size_t max_details) : max_details_(max_details) {
    result_.check = kind;
  }
  void fail(std::string headline, const std::vector<std::string>& more = {}) {
    ++failures_;
    if (first_failure_.empty()) first_failure_ = headline;
    add_detail(std::move(headline));
    for (const std::string& line : more) add_detail("    " + line);
  }
  bool failed() const noexcept { return failures_ > 0; }
  CheckResult passed(std::string summary) {
    result_.status = CheckStatus::passed;
    result_.summary = std::move(summary);
    return std::move(result_);
  }
  CheckResult not_applicable(std::string summary) {
    result_.status = CheckStatus::not_applicable;
    result_.summary = std::move(summary);
    return std::move(result_);
  }
  CheckResult finish(std::string passed_summary) {
    if (failures_ == 0) return passed(std::move(passed_summary));
    result_.status = CheckStatus::failed;
    result_.summary = failures_ == 1
                          ? first_failure_
                          : fmt::format("{} (and {} more)", first_failure_, failures_ - 1);
    return std::move(result_);
  }

 private:
  void add_detail(std::string line) {
    if (result_.details.size() < max_details_) {
      result_.details.push_back(std::move(line));
    } else if (result_.details.size() == max_details_) {
      result_.details.push_back("    ...");
    }
  }

  CheckResult result_;
  std::size_t max_details_;
  std::size_t failures_ = 0;
  std::string first_failure_;
};

std::string exception_text(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

// One decode attempt of possibly hostile bytes.
struct Attempt {
  enum class Outcome { value, typed_error, foreign_error } outcome = Outcome::value;
  std::string message;
  std::optional<SerializationErrorKind> kind;
  std::vector<std::string> suggestions;
  const TypeInfo* decoded_type = nullptr;
  Clock::duration elapsed{};
};

Attempt try_decode(const TypeRegistry& registry, std::string_view name, std::uint32_t version,
                   Codec codec, std::string_view bytes) {
  Attempt attempt;
  const auto start = Clock::now();
  try {
    DecodedValue value = registry.decode(name, version, codec, bytes);
    attempt.decoded_type = &value.type();
  } catch (const SerializationError& e) {
    attempt.outcome = Attempt::Outcome::typed_error;
    attempt.kind = e.kind();
    attempt.suggestions = e.suggestions();
    attempt.message = e.what();
  } catch (...) {
    attempt.outcome = Attempt::Outcome::foreign_error;
    attempt.message = exception_text(std::current_exception());
  }
  attempt.elapsed = Clock::now() - start;
  return attempt;
}

double milliseconds(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::vector<std::size_t> spread_positions(std::size_t count, std::size_t limit) {
  std::vector<std::size_t> positions;
  if (limit == 0 || count <= limit) {
    positions.reserve(count);
    for (std::size_t i = 0; i < count; ++i) positions.push_back(i);
    return positions;
  }
  positions.reserve(limit);
  for (std::size_t k = 0; k < limit; ++k) {
    positions.push_back(limit == 1 ? 0 : k * (count - 1) / (limit - 1));
  }
  positions.erase(std::unique(positions.begin(), positions.end()), positions.end());
  return positions;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file_atomically(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      throw std::filesystem::filesystem_error("cannot write golden file", temporary,
                                              std::make_error_code(std::errc::io_error));
    }
  }
  std::filesystem::rename(temporary, path);
}

std::string sample_label(std::size_t index, std::size_t count) {
  return fmt::format("sample {} of {}", index + 1, count);
}

// The encodings of one type's samples with one codec.
struct SampleEncodings {
  std::vector<std::string> bytes;     // encodable samples, in order
  std::vector<std::size_t> index;     // their sample numbers
  std::vector<std::string> failures;  // samples that did not encode
  std::size_t total = 0;
};

SampleEncodings encode_samples(const std::string& name, std::uint32_t version,
                               const internal::TypeOps& ops, const std::vector<std::any>& samples,
                               Codec codec) {
  SampleEncodings encodings;
  encodings.total = samples.size();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    std::string bytes;
    try {
      ops.encode(ops.address(samples[i]), bytes, 64, {name, version, codec});
      encodings.bytes.push_back(std::move(bytes));
      encodings.index.push_back(i);
    } catch (...) {
      encodings.failures.push_back(fmt::format("{} does not encode: {}",
                                               sample_label(i, samples.size()),
                                               exception_text(std::current_exception())));
    }
  }
  return encodings;
}

// ---- 1. round trip ------------------------------------------------------------

CheckResult check_round_trip(const TypeRegistry& registry, const TypeInfo& info, Codec codec,
                             const SampleEncodings& encodings, const ConformanceOptions& options) {
  CheckBuilder check(CheckKind::round_trip, options.max_details_per_check);
  for (const std::string& failure : encodings.failures) check.fail(failure);
  for (std::size_t k = 0; k < encodings.bytes.size(); ++k) {
    const std::size_t i = encodings.index[k];
    const std::string label = sample_label(i, encodings.total);
    const std::string& bytes = encodings.bytes[k];
    std::optional<DecodedValue> decoded;
    try {
      decoded.emplace(registry.decode(info.name(), info.version(), codec, bytes));
    } catch (...) {
      check.fail(fmt::format("{} does not decode from its own encoding: {}", label,
                             exception_text(std::current_exception())));
      continue;
    }
    if (info.equal(info.samples()[i], decoded->value())) continue;
    std::string again;
    try {
      again = registry.encode(*decoded, codec).bytes;
    } catch (...) {
      check.fail(fmt::format("{} decodes to a different value that does not encode: {}", label,
                             exception_text(std::current_exception())));
      continue;
    }
    if (again == bytes) {
      check.fail(
          fmt::format("{}: the decoded value is not == the original although both encode "
                      "to the same bytes (operator== compares something serialize does "
                      "not write, or is wrong)",
                      label));
    } else {
      check.fail(fmt::format("{}: the decoded value is not == the original; its encoding differs "
                             "(a member is lost on the way):",
                             label),
                 internal::describe_difference(bytes, again, codec, 12));
    }
  }
  return check.finish(fmt::format("{} sample{} round-trip equal", encodings.total,
                                  encodings.total == 1 ? "" : "s"));
}

// ---- 2. golden files ----------------------------------------------------------

// Compares one file with the encodings; returns a summary fragment.
std::string check_golden_file(const std::filesystem::path& path, std::string_view tag, Codec codec,
                              const SampleEncodings& encodings, bool update, CheckBuilder& check) {
  const std::string file_name = path.filename().string();
  const std::string wanted = internal::format_golden(tag, codec, encodings.bytes);
  if (!encodings.failures.empty()) {
    check.fail(fmt::format("{}: not compared, {} sample(s) do not encode", file_name,
                           encodings.failures.size()));
    return {};
  }
  if (!std::filesystem::exists(path)) {
    if (update) {
      write_file_atomically(path, wanted);
      return fmt::format("wrote {}", file_name);
    }
    check.fail(fmt::format("golden file {} is missing; create it with GAMEBOT_UPDATE_GOLDEN=1",
                           path.string()));
    return {};
  }
  const std::string text = read_file(path);
  const internal::GoldenContents golden = internal::parse_golden(text, codec);
  std::vector<std::string> problems;
  std::vector<std::vector<std::string>> diffs;
  if (!golden.ok) {
    problems.push_back(fmt::format("{} is not a golden file: {}", file_name, golden.error));
    diffs.emplace_back();
  } else {
    const std::size_t common = std::min(golden.encodings.size(), encodings.bytes.size());
    for (std::size_t k = 0; k < common; ++k) {
      if (golden.encodings[k] == encodings.bytes[k]) continue;
      problems.push_back(fmt::format(
          "{} differs from {}: the encoding changed without a version bump (bump the version "
          "and add an upcaster, or regenerate on purpose with GAMEBOT_UPDATE_GOLDEN=1)",
          sample_label(encodings.index[k], encodings.total), file_name));
      diffs.push_back(
          internal::describe_difference(golden.encodings[k], encodings.bytes[k], codec, 16));
    }
    if (golden.encodings.size() != encodings.bytes.size()) {
      problems.push_back(
          fmt::format("{} holds {} sample(s), {} registered; regenerate with "
                      "GAMEBOT_UPDATE_GOLDEN=1 after adding or removing samples",
                      file_name, golden.encodings.size(), encodings.bytes.size()));
      diffs.emplace_back();
    }
  }
  if (problems.empty()) return fmt::format("{} matches", file_name);
  if (update) {
    write_file_atomically(path, wanted);
    return fmt::format("updated {}", file_name);
  }
  for (std::size_t p = 0; p < problems.size(); ++p) check.fail(problems[p], diffs[p]);
  return {};
}

CheckResult check_golden(const TypeInfo& info, Codec codec, const SampleEncodings& encodings,
                         const ConformanceOptions& options) {
  CheckBuilder check(CheckKind::golden, options.max_details_per_check);
  if (options.golden_dir.empty()) return check.not_applicable("no golden directory configured");
  const bool update = update_golden_requested(options);
  std::vector<std::string> notes;
  const std::string current = check_golden_file(
      golden_file_path(options.golden_dir, info.name(), info.version(), codec),
      format_type_tag(info.name(), info.version()), codec, encodings, update, check);
  if (!current.empty()) notes.push_back(current);
  for (std::uint32_t version : info.upcast_versions()) {
    const internal::Upcaster* step = info.upcaster(version);
    if (step->samples.empty()) continue;
    const SampleEncodings old =
        encode_samples(info.name(), version, *step->ops, step->samples, codec);
    const std::string note =
        check_golden_file(golden_file_path(options.golden_dir, info.name(), version, codec),
                          format_type_tag(info.name(), version), codec, old, update, check);
    if (!note.empty()) notes.push_back(note);
  }
  return check.finish(fmt::format("{}", fmt::join(notes, ", ")));
}

// ---- 3. truncations and corruptions ---------------------------------------------

CheckResult check_robustness(const TypeRegistry& registry, const TypeInfo& info, Codec codec,
                             const SampleEncodings& encodings, const ConformanceOptions& options) {
  CheckBuilder check(CheckKind::robustness, options.max_details_per_check);
  struct Corruption {
    const char* name;
    unsigned char (*apply)(unsigned char);
  };
  static constexpr Corruption corruptions[] = {
      {"xor 0xff", [](unsigned char b) -> unsigned char { return b ^ 0xff; }},
      {"xor 0x01", [](unsigned char b) -> unsigned char { return b ^ 0x01; }},
      {"xor 0x80", [](unsigned char b) -> unsigned char { return b ^ 0x80; }},
      {"set 0x00", [](unsigned char) -> unsigned char { return 0x00; }},
  };
  std::size_t truncations = 0;
  std::size_t mutations = 0;
  std::size_t values = 0;
  std::size_t errors = 0;
  bool sampled = false;
  auto judge = [&](const Attempt& attempt, const std::string& what) {
    if (attempt.outcome == Attempt::Outcome::foreign_error) {
      check.fail(fmt::format("{} threw something other than SerializationError: {}", what,
                             attempt.message));
    } else if (attempt.elapsed > options.decode_time_limit) {
      check.fail(
          fmt::format("{} took {:.0f} ms to decode (limit {} ms): does a decoder trust a "
                      "count it read?",
                      what, milliseconds(attempt.elapsed), options.decode_time_limit.count()));
    } else if (attempt.outcome == Attempt::Outcome::value) {
      ++values;
    } else {
      ++errors;
    }
  };
  for (std::size_t k = 0; k < encodings.bytes.size(); ++k) {
    const std::string& bytes = encodings.bytes[k];
    const std::string label = sample_label(encodings.index[k], encodings.total);
    const auto cuts = spread_positions(bytes.size(), options.max_truncations);
    sampled = sampled || cuts.size() < bytes.size();
    for (std::size_t length : cuts) {
      ++truncations;
      judge(try_decode(registry, info.name(), info.version(), codec,
                       std::string_view(bytes).substr(0, length)),
            fmt::format("{} truncated to {} of {} bytes", label, length, bytes.size()));
    }
    const auto positions = spread_positions(bytes.size(), options.max_corruption_positions);
    sampled = sampled || positions.size() < bytes.size();
    std::string mutated = bytes;
    for (std::size_t position : positions) {
      const auto original = static_cast<unsigned char>(bytes[position]);
      for (const Corruption& corruption : corruptions) {
        const unsigned char changed = corruption.apply(original);
        if (changed == original) continue;
        mutated[position] = static_cast<char>(changed);
        ++mutations;
        judge(try_decode(registry, info.name(), info.version(), codec, mutated),
              fmt::format("{} with byte {} {}", label, position, corruption.name));
      }
      mutated[position] = static_cast<char>(original);
    }
  }
  if (encodings.bytes.empty()) check.fail("no sample encodes, nothing to corrupt");
  return check.finish(fmt::format("{} truncations, {} corruptions{}: {} typed errors, {} values",
                                  truncations, mutations, sampled ? " (spread)" : "", errors,
                                  values));
}

// ---- 4. wrong type names ----------------------------------------------------------

std::string unregistered_name_near(const TypeRegistry& registry, const std::string& name) {
  std::string candidate = name.size() > 1 ? name.substr(0, name.size() - 1) : name + "_";
  while (registry.find(candidate) != nullptr) candidate += "_";
  return candidate;
}

CheckResult check_wrong_name(const TypeRegistry& registry, const TypeInfo& info, Codec codec,
                             const SampleEncodings& encodings, const ConformanceOptions& options) {
  CheckBuilder check(CheckKind::wrong_name, options.max_details_per_check);
  const std::string unknown = unregistered_name_near(registry, info.name());
  std::size_t others = 0;
  std::size_t values = 0;
  std::size_t errors = 0;
  for (std::size_t k = 0; k < encodings.bytes.size(); ++k) {
    const std::string& bytes = encodings.bytes[k];
    const std::string label = sample_label(encodings.index[k], encodings.total);
    const Attempt attempt = try_decode(registry, unknown, info.version(), codec, bytes);
    if (attempt.outcome != Attempt::Outcome::typed_error ||
        attempt.kind != SerializationErrorKind::unknown_type) {
      check.fail(
          fmt::format("{} decoded under the unregistered name '{}' did not give an "
                      "unknown_type error{}",
                      label, unknown, attempt.message.empty() ? "" : ": " + attempt.message));
    } else if (std::find(attempt.suggestions.begin(), attempt.suggestions.end(), info.name()) ==
               attempt.suggestions.end()) {
      check.fail(fmt::format("the unknown_type error for '{}' does not suggest '{}'", unknown,
                             info.name()));
    }
    for (const TypeInfo* other : registry.types()) {
      if (other == &info) continue;
      ++others;
      const Attempt wrong = try_decode(registry, other->name(), other->version(), codec, bytes);
      const std::string what =
          fmt::format("{} decoded as '{}' v{}", label, other->name(), other->version());
      if (wrong.outcome == Attempt::Outcome::foreign_error) {
        check.fail(fmt::format("{} threw something other than SerializationError: {}", what,
                               wrong.message));
      } else if (wrong.elapsed > options.decode_time_limit) {
        check.fail(fmt::format("{} took {:.0f} ms (limit {} ms)", what, milliseconds(wrong.elapsed),
                               options.decode_time_limit.count()));
      } else if (wrong.outcome == Attempt::Outcome::value) {
        if (wrong.decoded_type != other) {
          check.fail(fmt::format("{} returned a '{}' value", what, wrong.decoded_type->name()));
        } else {
          ++values;
        }
      } else {
        ++errors;
      }
    }
  }
  if (encodings.bytes.empty()) check.fail("no sample encodes, nothing to decode");
  std::string summary = fmt::format("'{}' -> unknown_type suggesting '{}'", unknown, info.name());
  if (others > 0) {
    summary += fmt::format("; under other names: {} typed errors, {} values", errors, values);
  }
  return check.finish(std::move(summary));
}

// ---- 5. upcasters ---------------------------------------------------------------

CheckResult check_upcast(const TypeRegistry& registry, const TypeInfo& info, Codec codec,
                         const ConformanceOptions& options) {
  CheckBuilder check(CheckKind::upcast, options.max_details_per_check);
  const std::vector<std::uint32_t> versions = info.upcast_versions();
  if (versions.empty()) return check.not_applicable("no older versions registered");
  std::vector<std::string> notes;
  for (std::uint32_t version : versions) {
    const internal::Upcaster* step = info.upcaster(version);
    for (std::uint32_t link = version + 1; link < info.version(); ++link) {
      if (info.upcaster(link) == nullptr) {
        check.fail(fmt::format("v{} cannot reach v{}: no upcaster from v{} to v{}", version,
                               info.version(), link, link + 1));
      }
    }
    struct Input {
      std::string label;
      std::string bytes;
    };
    std::vector<Input> inputs;
    const SampleEncodings old =
        encode_samples(info.name(), version, *step->ops, step->samples, codec);
    for (const std::string& failure : old.failures)
      check.fail(fmt::format("v{} {}", version, failure));
    for (std::size_t k = 0; k < old.bytes.size(); ++k) {
      inputs.push_back(
          {fmt::format("v{} {}", version, sample_label(old.index[k], old.total)), old.bytes[k]});
    }
    std::filesystem::path golden_path;
    if (!options.golden_dir.empty()) {
      golden_path = golden_file_path(options.golden_dir, info.name(), version, codec);
      if (std::filesystem::exists(golden_path)) {
        const internal::GoldenContents golden =
            internal::parse_golden(read_file(golden_path), codec);
        if (!golden.ok) {
          check.fail(fmt::format("{} is not a golden file: {}", golden_path.filename().string(),
                                 golden.error));
        }
        for (std::size_t k = 0; k < golden.encodings.size(); ++k) {
          inputs.push_back({fmt::format("{} {}", golden_path.filename().string(),
                                        sample_label(k, golden.encodings.size())),
                            golden.encodings[k]});
        }
      }
    }
    if (inputs.empty()) {
      check.fail(fmt::format(
          "no v{} bytes to upcast: register v{} samples with add_upcaster{}", version, version,
          golden_path.empty() ? std::string()
                              : fmt::format(" or keep {}", golden_path.filename().string())));
      continue;
    }
    for (const Input& input : inputs) {
      try {
        DecodedValue value = registry.decode(info.name(), version, codec, input.bytes);
        if (value.type().type() != info.type()) {
          check.fail(fmt::format("{} upcast to {}, not the current {}", input.label,
                                 value.type().type_display_name(), info.type_display_name()));
          continue;
        }
        (void)registry.encode(value, codec);
      } catch (...) {
        check.fail(fmt::format("{} does not upcast to v{}: {}", input.label, info.version(),
                               exception_text(std::current_exception())));
      }
    }
    notes.push_back(
        fmt::format("v{}: {} input{}", version, inputs.size(), inputs.size() == 1 ? "" : "s"));
  }
  return check.finish(fmt::format("upcast to v{} from {}", info.version(), fmt::join(notes, ", ")));
}

TypeCodecReport check_type(const TypeRegistry& registry, const TypeInfo& info, Codec codec,
                           const ConformanceOptions& options) {
  TypeCodecReport report;
  report.type_name = info.name();
  report.version = info.version();
  report.codec = codec;
  const SampleEncodings encodings =
      encode_samples(info.name(), info.version(), info.ops(), info.samples(), codec);
  report.checks.push_back(check_round_trip(registry, info, codec, encodings, options));
  report.checks.push_back(check_golden(info, codec, encodings, options));
  report.checks.push_back(check_robustness(registry, info, codec, encodings, options));
  report.checks.push_back(check_wrong_name(registry, info, codec, encodings, options));
  report.checks.push_back(check_upcast(registry, info, codec, options));
  return report;
}

}  // namespace

std::string_view to_string(CheckKind check) noexcept {
  switch (check) {
    case CheckKind::round_trip:
      return "round_trip";
    case CheckKind::golden:
      return "golden";
    case CheckKind::robustness:
      return "robustness";
    case CheckKind::wrong_name:
      return "wrong_name";
    case CheckKind::upcast:
      return "upcast";
  }
  return "round_trip";
}

std::string_view to_string(CheckStatus status) noexcept {
  switch (status) {
    case CheckStatus::passed:
      return "passed";
    case CheckStatus::failed:
      return "failed";
    case CheckStatus::not_applicable:
      return "not_applicable";
  }
  return "failed";
}

bool TypeCodecReport::passed() const noexcept {
  return std::none_of(checks.begin(), checks.end(),
                      [](const CheckResult& c) { return c.status == CheckStatus::failed; });
}

const CheckResult* TypeCodecReport::check(CheckKind kind) const noexcept {
  for (const CheckResult& c : checks) {
    if (c.check == kind) return &c;
  }
  return nullptr;
}

bool ConformanceReport::passed() const noexcept {
  return registry_problems.empty() && failed_count() == 0;
}

std::size_t ConformanceReport::failed_count() const noexcept {
  return static_cast<std::size_t>(std::count_if(
      entries.begin(), entries.end(), [](const TypeCodecReport& e) { return !e.passed(); }));
}

const TypeCodecReport* ConformanceReport::find(std::string_view type_name,
                                               Codec codec) const noexcept {
  for (const TypeCodecReport& entry : entries) {
    if (entry.type_name == type_name && entry.codec == codec) return &entry;
  }
  return nullptr;
}

std::string ConformanceReport::to_string(std::size_t max_detail_lines) const {
  std::size_t tag_width = 0;
  for (const TypeCodecReport& entry : entries) {
    tag_width = std::max(tag_width, format_type_tag(entry.type_name, entry.version).size());
  }
  std::string text = fmt::format("serializer conformance: {} of {} type/codec pairs pass{}\n",
                                 entries.size() - failed_count(), entries.size(),
                                 registry_problems.empty() ? ""
                                                           : fmt::format(", {} registry problem(s)",
                                                                         registry_problems.size()));
  for (const TypeCodecReport& entry : entries) {
    const std::string tag = format_type_tag(entry.type_name, entry.version);
    if (entry.passed()) {
      std::vector<std::string_view> ok;
      std::vector<std::string_view> not_applicable;
      for (const CheckResult& c : entry.checks) {
        (c.status == CheckStatus::passed ? ok : not_applicable)
            .push_back(serializers::to_string(c.check));
      }
      text += fmt::format("  PASS  {:<{}}  {:<6}  {}{}\n", tag, tag_width,
                          serializers::to_string(entry.codec), fmt::join(ok, " "),
                          not_applicable.empty()
                              ? std::string()
                              : fmt::format(" (n/a: {})", fmt::join(not_applicable, " ")));
    } else {
      bool first = true;
      for (const CheckResult& c : entry.checks) {
        if (c.status != CheckStatus::failed) continue;
        text += fmt::format("  {}  {:<{}}  {:<6}  {}: {}\n", first ? "FAIL" : "    ",
                            first ? tag : std::string(), tag_width,
                            first ? serializers::to_string(entry.codec) : std::string_view(),
                            serializers::to_string(c.check), c.summary);
        first = false;
      }
    }
  }
  for (const std::string& problem : registry_problems)
    text += fmt::format("  FAIL  registry: {}\n", problem);
  std::size_t budget = max_detail_lines;
  bool header = false;
  for (const TypeCodecReport& entry : entries) {
    for (const CheckResult& c : entry.checks) {
      if (c.status != CheckStatus::failed || c.details.empty() || budget == 0) continue;
      if (!header) {
        text += "details:\n";
        header = true;
      }
      text += fmt::format("  {} {} {}:\n", format_type_tag(entry.type_name, entry.version),
                          serializers::to_string(entry.codec), serializers::to_string(c.check));
      for (const std::string& line : c.details) {
        if (budget == 0) {
          text += "    (more details cut)\n";
          break;
        }
        text += fmt::format("    {}\n", line);
        --budget;
      }
    }
  }
  return text;
}

bool update_golden_requested(const ConformanceOptions& options) {
  if (options.update_golden) return true;
  const char* value = std::getenv("GAMEBOT_UPDATE_GOLDEN");
  return value != nullptr && std::string_view(value) == "1";
}

std::filesystem::path golden_file_path(const std::filesystem::path& golden_dir,
                                       std::string_view name, std::uint32_t version, Codec codec) {
  return golden_dir / fmt::format("{}.{}", format_type_tag(name, version), to_string(codec));
}

std::vector<std::string> find_stale_golden_files(const TypeRegistry& registry,
                                                 const std::filesystem::path& golden_dir) {
  std::vector<std::string> problems;
  std::error_code error;
  if (golden_dir.empty() || !std::filesystem::is_directory(golden_dir, error)) return problems;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(golden_dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const std::filesystem::path& file : files) {
    const std::string file_name = file.filename().string();
    if (!parse_codec(file.extension().string().substr(file.extension().empty() ? 0 : 1))) continue;
    TypeTag tag;
    try {
      tag = parse_type_tag(file.stem().string());
    } catch (const SerializationError&) {
      continue;
    }
    const TypeInfo* info = registry.find(tag.name);
    if (info == nullptr) {
      const std::vector<std::string> close = registry.closest_names(tag.name);
      problems.push_back(fmt::format(
          "golden file {} belongs to no registered type '{}' (renamed?{}); a stable name must not "
          "change once events are stored",
          file_name, tag.name,
          close.empty() ? std::string() : fmt::format(" closest: {}", fmt::join(close, ", "))));
    } else if (tag.version > info->version()) {
      problems.push_back(fmt::format("golden file {} is for v{}, newer than the registered v{}",
                                     file_name, tag.version, info->version()));
    } else if (tag.version < info->version() && info->upcaster(tag.version) == nullptr) {
      problems.push_back(
          fmt::format("golden file {} is for v{} but no upcaster from v{} is "
                      "registered: stored v{} events could not be read",
                      file_name, tag.version, tag.version, tag.version));
    }
  }
  return problems;
}

namespace {

// One length-prefixed field of conformance_inputs().
void append_field(std::string& out, std::string_view field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

void append_encodings(std::string& out, const SampleEncodings& encodings) {
  append_field(out, std::to_string(encodings.total));
  for (std::size_t k = 0; k < encodings.bytes.size(); ++k) {
    append_field(out, std::to_string(encodings.index[k]));
    append_field(out, encodings.bytes[k]);
  }
  for (const std::string& failure : encodings.failures) append_field(out, failure);
}

}  // namespace

std::optional<std::string> conformance_inputs(const TypeRegistry& registry,
                                              const ConformanceOptions& options) {
  if (update_golden_requested(options)) return std::nullopt;
  std::string out = "gamebot conformance inputs 1\n";
  append_field(out, options.golden_dir.string());
  for (Codec codec : options.codecs) append_field(out, to_string(codec));
  append_field(out, options.only_type);
  append_field(out, options.check_stale_golden_files ? "stale" : "");
  append_field(out, std::to_string(options.max_truncations));
  append_field(out, std::to_string(options.max_corruption_positions));
  append_field(out, std::to_string(options.decode_time_limit.count()));
  append_field(out, std::to_string(options.max_details_per_check));
  std::vector<const TypeInfo*> checked = registry.types();
  if (!options.only_type.empty()) checked = {&registry.at(options.only_type)};
  // Every registered type's identity: wrong_name decodes under all of them.
  for (const TypeInfo* info : registry.types()) {
    append_field(out, info->name());
    append_field(out, std::to_string(info->version()));
    append_field(out, info->type_display_name());
    for (std::uint32_t version : info->upcast_versions())
      append_field(out, std::to_string(version));
  }
  for (const TypeInfo* info : checked) {
    for (Codec codec : options.codecs) {
      append_field(out, info->name());
      append_encodings(
          out, encode_samples(info->name(), info->version(), info->ops(), info->samples(), codec));
      for (std::uint32_t version : info->upcast_versions()) {
        const internal::Upcaster* step = info->upcaster(version);
        append_field(out, std::to_string(version));
        append_encodings(out,
                         encode_samples(info->name(), version, *step->ops, step->samples, codec));
      }
    }
  }
  std::error_code error;
  if (!options.golden_dir.empty() && std::filesystem::is_directory(options.golden_dir, error)) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(options.golden_dir))
      files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const std::filesystem::path& file : files) {
      append_field(out, file.filename().string());
      append_field(out, std::filesystem::is_regular_file(file, error) ? read_file(file) : "");
    }
  } else {
    append_field(out, "no golden directory");
  }
  return out;
}

ConformanceReport run_conformance(const TypeRegistry& registry, const ConformanceOptions& options) {
  ConformanceReport report;
  if (!options.only_type.empty()) {
    const TypeInfo& info = registry.at(options.only_type);
    for (Codec codec : options.codecs)
      report.entries.push_back(check_type(registry, info, codec, options));
    return report;
  }
  if (registry.empty()) report.registry_problems.push_back("no types are registered");
  for (const TypeInfo* info : registry.types()) {
    for (Codec codec : options.codecs)
      report.entries.push_back(check_type(registry, *info, codec, options));
  }
  if (options.check_stale_golden_files) {
    report.registry_problems = [&] {
      auto problems = std::move(report.registry_problems);
      for (auto& p : find_stale_golden_files(registry, options.golden_dir))
        problems.push_back(std::move(p));
      return problems;
    }();
  }
  return report;
}

}  // namespace gamebot::serializers
