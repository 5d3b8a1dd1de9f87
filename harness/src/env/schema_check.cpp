#include "env/schema_check.hpp"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <optional>
#include <string_view>

namespace gamebot::harness::env {

namespace {

std::string unqualified_lower(std::string name) {
  name.erase(std::remove(name.begin(), name.end(), '"'), name.end());
  if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// A hand-written scanner, not <regex>: libstdc++'s regex took ~14 ms of every harness process's
// start on the store's migrations (and the house rules keep <regex> out of the kit).
class SqlScanner {
 public:
  SqlScanner(std::string_view sql, std::size_t at) : sql_(sql), at_(at) {}

  std::size_t position() const { return at_; }

  // The keyword (any case) followed by at least one whitespace character, consumed.
  bool keyword(std::string_view word) {
    if (sql_.size() - at_ < word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i)
      if (lower(sql_[at_ + i]) != word[i]) return false;
    std::size_t end = at_ + word.size();
    if (end >= sql_.size() || !space(sql_[end])) return false;
    while (end < sql_.size() && space(sql_[end])) ++end;
    at_ = end;
    return true;
  }

  // Keywords in sequence, all or none consumed.
  bool keywords(std::initializer_list<std::string_view> words) {
    const std::size_t start = at_;
    for (std::string_view word : words) {
      if (!keyword(word)) {
        at_ = start;
        return false;
      }
    }
    return true;
  }

  // A possibly qualified, quoted or templated name ([A-Za-z0-9_".{}]+); empty if none.
  std::string_view name() const {
    std::size_t end = at_;
    while (end < sql_.size() && name_char(sql_[end])) ++end;
    return sql_.substr(at_, end - at_);
  }

  static char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static bool space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
  static bool word_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
  }
  static bool name_char(char c) {
    return word_char(c) || c == '"' || c == '.' || c == '{' || c == '}';
  }

 private:
  std::string_view sql_;
  std::size_t at_;
};

// Every "<verb> [or replace] [unique] table|index|function [if [not] exists] name" in `sql`
// (verb "create" or "drop"; drop takes neither "or replace" nor "unique", and "if exists"),
// case-insensitive, the verb starting a word. A clause that leaves no name is tried without it.
std::vector<ExpectedObject> statements_of(std::string_view sql, std::string_view verb) {
  const bool create = verb == "create";
  std::vector<ExpectedObject> found;
  std::size_t at = 0;
  while (at < sql.size()) {
    const std::size_t start = at++;
    if (start > 0 && SqlScanner::word_char(sql[start - 1])) continue;
    SqlScanner s(sql, start);
    if (!s.keyword(verb)) continue;
    if (create) {
      s.keywords({"or", "replace"});
      s.keyword("unique");
    }
    std::optional<ExpectedObject::Kind> kind;
    if (s.keyword("table"))
      kind = ExpectedObject::Kind::table;
    else if (s.keyword("index"))
      kind = ExpectedObject::Kind::index;
    else if (s.keyword("function"))
      kind = ExpectedObject::Kind::function;
    if (!kind) continue;
    const std::size_t before_clause = s.position();
    std::string_view name;
    if (create ? s.keywords({"if", "not", "exists"}) : s.keywords({"if", "exists"}))
      name = s.name();
    if (name.empty()) name = SqlScanner(sql, before_clause).name();
    if (name.empty()) continue;
    found.push_back(ExpectedObject{*kind, unqualified_lower(std::string(name))});
    at = static_cast<std::size_t>(name.data() - sql.data()) + name.size();
  }
  return found;
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
  std::vector<ExpectedObject> objects;
  for (const repo::Migration& migration : migrations) {
    for (ExpectedObject& o : statements_of(migration.sql, "create")) {
      const bool known = std::any_of(objects.begin(), objects.end(), [&](const auto& known) {
        return known.kind == o.kind && known.name == o.name;
      });
      if (!known) objects.push_back(std::move(o));
    }
    for (const ExpectedObject& o : statements_of(migration.sql, "drop"))
      std::erase_if(
          objects, [&](const auto& known) { return known.kind == o.kind && known.name == o.name; });
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
