#pragma once

#include <concepts>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "gamebot/core/uuid.hpp"
#include "gamebot/repo/internal/cursor.hpp"
#include "gamebot/repo/param.hpp"

namespace gamebot::repo {

namespace internal {
template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};
[[noreturn]] void throw_null_column(const Cursor& cursor, int column);
[[noreturn]] void throw_out_of_range(const Cursor& cursor, int column, std::string_view type);
[[noreturn]] void throw_no_such_column(const Cursor& cursor, int column);
[[noreturn]] void throw_no_such_column(const Cursor& cursor, std::string_view name);
}  // namespace internal

// The current row of a Result: a view, valid until the Result advances or is destroyed.
// Values are read with checked conversions: get<T>(index) or get<T>(name), where T is bool, an
// integer type (range-checked), double/float, std::string, std::string_view (valid while the row
// is), Bytes, Uuid, Timestamp, or std::optional of one of those (NULL -> nullopt). A NULL read as
// a non-optional type, a type mismatch or a missing column throws ConversionError(schema); a value
// that does not fit or parse throws ConversionError(integrity).
class Row {
 public:
  explicit Row(const internal::Cursor* cursor) noexcept : cursor_(cursor) {}

  int size() const noexcept { return cursor_->column_count(); }
  std::string_view column_name(int column) const { return cursor_->column_name(checked(column)); }
  bool is_null(int column) const { return cursor_->is_null(checked(column)); }
  bool is_null(std::string_view name) const { return cursor_->is_null(index_of(name)); }
  // Index of the first column called `name`; throws ConversionError(schema) if none.
  int index_of(std::string_view name) const;

  template <typename T>
  T get(int column) const {
    checked(column);
    if constexpr (internal::is_optional<T>::value) {
      if (cursor_->is_null(column)) return std::nullopt;
      return read<typename T::value_type>(column);
    } else {
      if (cursor_->is_null(column)) internal::throw_null_column(*cursor_, column);
      return read<T>(column);
    }
  }
  template <typename T>
  T get(std::string_view name) const {
    return get<T>(index_of(name));
  }

 private:
  int checked(int column) const {
    if (column < 0 || column >= cursor_->column_count()) {
      internal::throw_no_such_column(*cursor_, column);
    }
    return column;
  }

  template <typename T>
  T read(int column) const {
    if constexpr (std::same_as<T, bool>) {
      return cursor_->get_bool(column);
    } else if constexpr (std::integral<T>) {
      std::int64_t value = cursor_->get_int64(column);
      if (!std::in_range<T>(value)) internal::throw_out_of_range(*cursor_, column, "integer");
      return static_cast<T>(value);
    } else if constexpr (std::floating_point<T>) {
      return static_cast<T>(cursor_->get_double(column));
    } else if constexpr (std::same_as<T, std::string>) {
      return cursor_->get_string(column);
    } else if constexpr (std::same_as<T, std::string_view>) {
      return cursor_->get_text_view(column);
    } else if constexpr (std::same_as<T, Bytes>) {
      auto view = cursor_->get_bytes_view(column);
      return Bytes(view.begin(), view.end());
    } else if constexpr (std::same_as<T, Uuid>) {
      return cursor_->get_uuid(column);
    } else if constexpr (std::same_as<T, Timestamp>) {
      return cursor_->get_timestamp(column);
    } else {
      static_assert(!sizeof(T*), "unsupported column type for Row::get");
    }
  }

  const internal::Cursor* cursor_;
};

// The outcome of a statement: its rows (a forward-only cursor) and the affected-row count.
// Move-only. Must not outlive the Connection that produced it; while a SQLite result is open its
// prepared statement stays busy (a second use of the same SQL prepares a fresh statement).
// Not thread-safe.
class Result {
 public:
  Result() noexcept = default;
  explicit Result(internal::Cursor* cursor) noexcept : cursor_(cursor) {}
  Result(Result&& other) noexcept
      : cursor_(std::exchange(other.cursor_, nullptr)), on_row_(other.on_row_) {}
  Result& operator=(Result&& other) noexcept {
    if (this != &other) {
      reset();
      cursor_ = std::exchange(other.cursor_, nullptr);
      on_row_ = other.on_row_;
    }
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { reset(); }

  // Moves to the next row (the first on the first call); false when there are no more.
  bool next() {
    on_row_ = cursor_ != nullptr && cursor_->next();
    return on_row_;
  }
  // The current row; throws std::logic_error when next() has not returned true.
  Row row() const;
  int column_count() const noexcept { return cursor_ ? cursor_->column_count() : 0; }
  std::string_view column_name(int column) const;
  std::int64_t affected_rows() const noexcept { return cursor_ ? cursor_->affected_rows() : 0; }
  // Frees the driver resources now (also done by the destructor).
  void reset() noexcept {
    if (cursor_ != nullptr) std::exchange(cursor_, nullptr)->release();
    on_row_ = false;
  }

  // Single-pass iteration: for (Row row : result) { ... }
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Row;
    using difference_type = std::ptrdiff_t;
    iterator() noexcept = default;
    explicit iterator(Result* result) noexcept : result_(result) {}
    Row operator*() const { return result_->row(); }
    iterator& operator++() {
      if (!result_->next()) result_ = nullptr;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.result_ == b.result_;
    }

   private:
    Result* result_ = nullptr;
  };
  iterator begin() { return next() ? iterator(this) : iterator(); }
  iterator end() noexcept { return iterator(); }

 private:
  internal::Cursor* cursor_ = nullptr;
  bool on_row_ = false;
};

}  // namespace gamebot::repo
