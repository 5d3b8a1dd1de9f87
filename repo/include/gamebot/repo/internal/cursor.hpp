#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "gamebot/core/uuid.hpp"
#include "gamebot/repo/param.hpp"

namespace gamebot::repo::internal {

// A driver's result set as seen by Result and Row. Getters are called only for non-NULL values
// of existing columns and throw ConversionError when the stored type does not convert.
class Cursor {
 public:
  virtual ~Cursor() = default;
  // Advances to the next row; false at the end. Throws DatabaseError (SQLite steps lazily).
  virtual bool next() = 0;
  // Columns of the result (set by the driver when the statement runs).
  int column_count() const noexcept { return column_count_; }
  virtual std::string_view column_name(int column) const noexcept = 0;
  // The stored/declared type for messages ("integer", "text", "uuid", ...).
  virtual std::string type_name(int column) const = 0;
  virtual bool is_null(int column) const = 0;
  virtual bool get_bool(int column) const = 0;
  virtual std::int64_t get_int64(int column) const = 0;
  virtual double get_double(int column) const = 0;
  virtual std::string get_string(int column) const = 0;
  // A view into the result's own memory, valid until the row changes.
  virtual std::string_view get_text_view(int column) const = 0;
  virtual std::span<const std::uint8_t> get_bytes_view(int column) const = 0;
  virtual Uuid get_uuid(int column) const = 0;
  virtual Timestamp get_timestamp(int column) const = 0;
  // Rows changed by the statement (INSERT/UPDATE/DELETE), 0 otherwise.
  virtual std::int64_t affected_rows() const noexcept = 0;
  // End of use: resets/clears and may delete this object. Never throws.
  virtual void release() noexcept = 0;

 protected:
  int column_count_ = 0;
  // Throws ConversionError(schema) "column 'x' holds <actual>, not <wanted>".
  [[noreturn]] void mismatch(int column, std::string_view wanted) const;
  // Throws ConversionError(integrity) "column 'x': <what>".
  [[noreturn]] void bad_value(int column, std::string_view what) const;
};

}  // namespace gamebot::repo::internal
