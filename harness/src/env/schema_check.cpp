#include "env/schema_check.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <string_view>

namespace gamebot::harness::env {

namespace {

std::string unqualified_lower(std::string name) {
  name.erase(std::remove(name.begin(), name.end(), '"'), name.end());
  if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

}  // namespace

std::string_view to_string(ExpectedObject::Kind kind) noexcept {
  switch (kind) {
    case ExpectedObject::Kind::table:
      return "table";
    case ExpectedObject::Kind::index:
      return "index";
    case ExpectedObject::Kind::function:
      return "function";
  }
  return "object";
}

std::vector<ExpectedObject> objects_created_by(const std::vector<repo::Migration>& migrations) {
  static const std::regex create(
      R"(\bcreate\s+(?:or\s+replace\s+)?(?:unique\s+)?(table|index|function)\s+(?:if\s+not\s+exists\s+)?([A-Za-z0-9_".{}]+))",
      std::regex::icase);
  static const std::regex drop(
      R"(\bdrop\s+(table|index|function)\s+(?:if\s+exists\s+)?([A-Za-z0-9_".{}]+))",
      std::regex::icase);
  std::vector<ExpectedObject> objects;
  auto kind_of = [](std::string word) {
    for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (word == "table") return ExpectedObject::Kind::table;
    if (word == "index") return ExpectedObject::Kind::index;
    return ExpectedObject::Kind::function;
  };
  for (const repo::Migration& migration : migrations) {
    for (std::sregex_iterator it(migration.sql.begin(), migration.sql.end(), create), end;
         it != end; ++it) {
      ExpectedObject object{kind_of((*it)[1].str()), unqualified_lower((*it)[2].str())};
      const bool known = std::any_of(objects.begin(), objects.end(), [&](const auto& o) {
        return o.kind == object.kind && o.name == object.name;
      });
      if (!known) objects.push_back(std::move(object));
    }
    for (std::sregex_iterator it(migration.sql.begin(), migration.sql.end(), drop), end; it != end;
         ++it) {
      const auto kind = kind_of((*it)[1].str());
      const std::string name = unqualified_lower((*it)[2].str());
      std::erase_if(objects, [&](const auto& o) { return o.kind == kind && o.name == name; });
    }
  }
  return objects;
}

std::vector<std::string> missing_objects(repo::Connection& connection,
                                         const std::vector<ExpectedObject>& objects,
                                         const std::string& schema) {
  std::vector<std::string> missing;
  const bool postgres = connection.driver() == repo::Driver::postgres;
  for (const ExpectedObject& object : objects) {
    std::optional<std::int64_t> found;
    if (!postgres) {
      if (object.kind == ExpectedObject::Kind::function) continue;
      found = connection.query_value<std::int64_t>(
          "SELECT count(*) FROM sqlite_master WHERE type = ?1 AND name = ?2",
          std::string(to_string(object.kind)), object.name);
    } else if (object.kind == ExpectedObject::Kind::function) {
      found = connection.query_value<std::int64_t>(
          "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
          "WHERE p.proname = $1 AND n.nspname = coalesce(nullif($2, ''), current_schema())",
          object.name, schema);
    } else {
      found = connection.query_value<std::int64_t>(
          "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE c.relname = $1 AND c.relkind = ANY($3::text::\"char\"[]) "
          "AND n.nspname = coalesce(nullif($2, ''), current_schema())",
          object.name, schema,
          std::string(object.kind == ExpectedObject::Kind::table ? "{r,p}" : "{i,I}"));
    }
    if (!found || *found == 0) {
      missing.push_back(std::string(to_string(object.kind)) + " " +
                        (postgres && !schema.empty() ? schema + "." : std::string()) + object.name +
                        " is missing");
    }
  }
  return missing;
}

// One line per problem of a database against the expected migrations and objects.
std::vector<std::string> schema_problems(repo::Connection& connection,
                                         const repo::Migrator& store_migrator,
                                         const std::optional<repo::Migrator>& app_migrator,
                                         const std::vector<ExpectedObject>& objects,
                                         const std::string& schema) {
  std::vector<std::string> problems;
  auto add_report = [&](const repo::VerifyReport& report, std::string_view what) {
    for (const auto& p : report.pending)
      problems.push_back(std::string(what) + " migration " + p + " is not applied");
    for (const auto& p : report.problems) problems.push_back(std::string(what) + ": " + p);
  };
  add_report(store_migrator.verify(connection), "event store");
  if (app_migrator) add_report(app_migrator->verify(connection), "application");
  for (auto& line : env::missing_objects(connection, objects, schema)) problems.push_back(line);
  return problems;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += "  - " + line + "\n";
  return out;
}

}  // namespace gamebot::harness::env
