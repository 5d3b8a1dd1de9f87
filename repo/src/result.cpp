#include "gamebot/repo/result.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "gamebot/repo/errors.hpp"

namespace gamebot::repo {
namespace internal {

namespace {
std::string column_label(const Cursor& cursor, int column) {
  return fmt::format("{} ('{}')", column, cursor.column_name(column));
}
}  // namespace

void Cursor::mismatch(int column, std::string_view wanted) const {
  throw ConversionError(FaultClass::schema,
                        fmt::format("column {} holds {}, which does not convert to {}",
                                    column_label(*this, column), type_name(column), wanted),
                        std::string(column_name(column)));
}

void Cursor::bad_value(int column, std::string_view what) const {
  throw ConversionError(FaultClass::integrity,
                        fmt::format("column {}: {}", column_label(*this, column), what),
                        std::string(column_name(column)));
}

void throw_null_column(const Cursor& cursor, int column) {
  throw ConversionError(
      FaultClass::schema,
      fmt::format("column {} is NULL; read it as std::optional", column_label(cursor, column)),
      std::string(cursor.column_name(column)));
}

void throw_out_of_range(const Cursor& cursor, int column, std::string_view type) {
  throw ConversionError(FaultClass::integrity,
                        fmt::format("column {}: {} value out of range of the requested type",
                                    column_label(cursor, column), type),
                        std::string(cursor.column_name(column)));
}

void throw_no_such_column(const Cursor& cursor, int column) {
  throw ConversionError(
      FaultClass::schema,
      fmt::format("no column {} (the result has {})", column, cursor.column_count()), {});
}

void throw_no_such_column(const Cursor& cursor, std::string_view name) {
  std::string names;
  for (int i = 0; i < cursor.column_count(); ++i) {
    if (i > 0) names += ", ";
    names += cursor.column_name(i);
  }
  throw ConversionError(FaultClass::schema,
                        fmt::format("no column named '{}' (columns: {})", name, names),
                        std::string(name));
}

}  // namespace internal

int Row::index_of(std::string_view name) const {
  int count = cursor_->column_count();
  for (int i = 0; i < count; ++i) {
    if (cursor_->column_name(i) == name) return i;
  }
  internal::throw_no_such_column(*cursor_, name);
}

Row Result::row() const {
  if (!on_row_ || cursor_ == nullptr) {
    throw std::logic_error("Result::row() called without a current row (call next() first)");
  }
  return Row(cursor_);
}

std::string_view Result::column_name(int column) const {
  if (cursor_ == nullptr || column < 0 || column >= cursor_->column_count()) {
    throw std::out_of_range("Result::column_name: no such column");
  }
  return cursor_->column_name(column);
}

}  // namespace gamebot::repo
