#pragma once

// Catch2 (v2) adapter for the conformance suite: one Catch2 test case per
// registered type and codec, plus one for registry-wide problems, so CTest
// (catch_discover_tests) shows and reruns each on its own. Header-only: include
// it in a test source of an executable that links Catch2.
//
//   gamebot::serializers::TypeRegistry make_registry();  // your types and samples
//
//   GAMEBOT_SERIALIZER_CONFORMANCE_TESTS(make_registry, [] {
//     gamebot::serializers::ConformanceOptions options;
//     options.golden_dir = MY_GOLDEN_DIR;
//     return options;
//   });
//
// registers, for a type "guess_processed" v2,
//   "serializer conformance: guess_processed@v2 json"    [serializers][conformance]
//   "serializer conformance: guess_processed@v2 binary"  [serializers][conformance]
//   "serializer conformance: registry"                   [serializers][conformance]
//
// Both functions run once during static initialisation (when Catch2 collects
// test cases), so they must not depend on other static objects. If either
// throws, a single failing "serializer conformance: registry" case reports it.
// Use the macro once per test executable (test names must be unique).

#include <catch2/catch.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "gamebot/serializers/conformance.hpp"
#include "gamebot/serializers/type_registry.hpp"
#include "gamebot/serializers/type_tag.hpp"

namespace gamebot::serializers::catch2 {

// Reports each check of each entry as one Catch2 assertion (failures do not stop the test).
inline void report_to_catch(const ConformanceReport& report) {
  for (const TypeCodecReport& entry : report.entries) {
    const std::string where = format_type_tag(entry.type_name, entry.version) + " " +
                              std::string(to_string(entry.codec)) + " ";
    for (const CheckResult& check : entry.checks) {
      std::string text = where + std::string(to_string(check.check)) + ": " + check.summary;
      if (check.status == CheckStatus::failed) {
        for (const std::string& line : check.details) text += "\n  " + line;
        FAIL_CHECK(text);
      } else {
        SUCCEED(text);
      }
    }
  }
  for (const std::string& problem : report.registry_problems) FAIL_CHECK("registry: " + problem);
}

class ConformanceTestRegistrar {
 public:
  ConformanceTestRegistrar(const std::function<TypeRegistry()>& make_registry,
                           const std::function<ConformanceOptions()>& make_options,
                           const char* file, std::size_t line) noexcept {
    const Catch::SourceLineInfo where(file, line);
    try {
      auto state = std::make_shared<State>(State{make_registry(), make_options()});
      for (const TypeInfo* info : state->registry.types()) {
        for (Codec codec : state->options.codecs) {
          const std::string name =
              "serializer conformance: " + format_type_tag(info->name(), info->version()) + " " +
              std::string(to_string(codec));
          Catch::AutoReg(new TypeCodecInvoker(state, info->name(), codec), where, "",
                         Catch::NameAndTags(name, "[serializers][conformance]"));
        }
      }
      Catch::AutoReg(new RegistryInvoker(state, nullptr), where, "",
                     Catch::NameAndTags(kRegistryCase, "[serializers][conformance]"));
    } catch (...) {
      Catch::AutoReg(new RegistryInvoker(nullptr, std::current_exception()), where, "",
                     Catch::NameAndTags(kRegistryCase, "[serializers][conformance]"));
    }
  }

 private:
  static constexpr const char* kRegistryCase = "serializer conformance: registry";

  struct State {
    TypeRegistry registry;
    ConformanceOptions options;
  };

  class TypeCodecInvoker : public Catch::ITestInvoker {
   public:
    TypeCodecInvoker(std::shared_ptr<const State> state, std::string type, Codec codec)
        : state_(std::move(state)), type_(std::move(type)), codec_(codec) {}
    void invoke() const override {
      ConformanceOptions options = state_->options;
      options.only_type = type_;
      options.codecs = {codec_};
      report_to_catch(run_conformance(state_->registry, options));
    }

   private:
    std::shared_ptr<const State> state_;
    std::string type_;
    Codec codec_;
  };

  class RegistryInvoker : public Catch::ITestInvoker {
   public:
    // An exception_ptr kept to rethrow later, not an exception object left unthrown.
    // NOLINTBEGIN(bugprone-throw-keyword-missing)
    RegistryInvoker(std::shared_ptr<const State> state, std::exception_ptr setup_error)
        : state_(std::move(state)), setup_error_(std::move(setup_error)) {}
    // NOLINTEND(bugprone-throw-keyword-missing)
    void invoke() const override {
      if (setup_error_) {
        try {
          std::rethrow_exception(setup_error_);
        } catch (const std::exception& e) {
          FAIL(std::string("building the registry or the options threw: ") + e.what());
        } catch (...) {
          FAIL("building the registry or the options threw a non-standard exception");
        }
      }
      if (state_->registry.empty()) FAIL_CHECK("registry: no types are registered");
      const auto problems = find_stale_golden_files(state_->registry, state_->options.golden_dir);
      for (const std::string& problem : problems) FAIL_CHECK("registry: " + problem);
      SUCCEED(std::to_string(state_->registry.size()) + " types registered");
    }

   private:
    std::shared_ptr<const State> state_;
    std::exception_ptr setup_error_;
  };
};

}  // namespace gamebot::serializers::catch2

#define GAMEBOT_SERIALIZERS_CONCAT2(a, b) a##b
#define GAMEBOT_SERIALIZERS_CONCAT(a, b) GAMEBOT_SERIALIZERS_CONCAT2(a, b)
// make_registry: callable returning a TypeRegistry; make_options: callable
// returning ConformanceOptions.
#define GAMEBOT_SERIALIZER_CONFORMANCE_TESTS(make_registry, make_options) \
  static const ::gamebot::serializers::catch2::ConformanceTestRegistrar   \
  GAMEBOT_SERIALIZERS_CONCAT(gamebot_serializer_conformance_, __LINE__)(  \
      make_registry, make_options, __FILE__, static_cast<std::size_t>(__LINE__))
