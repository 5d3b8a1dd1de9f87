#include "event_json.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cereal/external/base64.hpp>
#include <cstdio>

#include "gamebot/core/error.hpp"

namespace gamebot::tools {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
constexpr unsigned kParseFlags = rapidjson::kParseFullPrecisionFlag |
                                 rapidjson::kParseValidateEncodingFlag |
                                 rapidjson::kParseIterativeFlag;
// rapidjson writes values recursively; deeper payloads go as base64.
constexpr int kMaxJsonDepth = 200;

bool nesting_within_limit(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string compact(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// True when `bytes` is a JSON text that rapidjson writes back identically.
bool round_trips_as_json(std::string_view bytes) {
  if (bytes.empty() || !nesting_within_limit(bytes)) return false;
  rapidjson::Document document;
  document.Parse<kParseFlags>(bytes.data(), bytes.size());
  if (document.HasParseError()) return false;
  return compact(document) == bytes;
}

void write_string(Writer& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

void write_payload(Writer& w, const char* key, std::string_view bytes, PayloadMode mode) {
  if (mode == PayloadMode::automatic && round_trips_as_json(bytes)) {
    w.Key(key);
    w.RawValue(bytes.data(), bytes.size(), rapidjson::kObjectType);
    return;
  }
  w.Key((std::string(key) + "_base64").c_str());
  write_string(w, cereal::base64::encode(reinterpret_cast<const unsigned char*>(bytes.data()),
                                         bytes.size()));
}

std::string finish(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

[[noreturn]] void bad_line(std::size_t line_number, std::string_view what) {
  throw Error(FaultClass::serialization, fmt::format("line {}: {}", line_number, what));
}

bool valid_base64(std::string_view text) {
  if (text.size() % 4 != 0) return false;
  std::size_t padding = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '=') {
      if (i + 2 < text.size()) return false;
      ++padding;
      continue;
    }
    if (padding > 0) return false;
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

class LineReader {
 public:
  LineReader(const rapidjson::Value& object, std::size_t line_number)
      : object_(object), line_(line_number) {}

  const rapidjson::Value* find(const char* key) const {
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd() || it->value.IsNull()) return nullptr;
    return &it->value;
  }
  std::optional<std::string> string(const char* key) const {
    const rapidjson::Value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->IsString()) bad_line(line_, fmt::format("\"{}\" must be a string", key));
    return std::string(v->GetString(), v->GetStringLength());
  }
  std::string required_string(const char* key) const {
    auto s = string(key);
    if (!s) bad_line(line_, fmt::format("\"{}\" is missing", key));
    return *s;
  }
  std::optional<std::int64_t> integer(const char* key) const {
    const rapidjson::Value* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->IsInt64()) bad_line(line_, fmt::format("\"{}\" must be an integer", key));
    return v->GetInt64();
  }
  std::optional<Uuid> uuid(const char* key) const {
    auto s = string(key);
    if (!s) return std::nullopt;
    auto id = Uuid::parse(*s);
    if (!id) bad_line(line_, fmt::format("\"{}\" is not a UUID: '{}'", key, *s));
    return id;
  }
  std::optional<eventstore::Timestamp> timestamp(const char* key) const {
    auto s = string(key);
    if (!s) return std::nullopt;
    auto t = parse_timestamp(*s);
    if (!t) {
      bad_line(line_, fmt::format("\"{}\" is not a UTC time like 2026-01-02T03:04:05.000006Z: '{}'",
                                  key, *s));
    }
    return t;
  }
  // "key" (any JSON value, stored as its compact text) or "key_base64".
  std::string payload(const char* key) const {
    const std::string base64_key = std::string(key) + "_base64";
    const rapidjson::Value* json = find(key);
    auto encoded = string(base64_key.c_str());
    if (json != nullptr && encoded)
      bad_line(line_, fmt::format("give \"{}\" or \"{}\", not both", key, base64_key));
    if (json != nullptr) return compact(*json);
    if (!encoded) return {};
    if (!valid_base64(*encoded)) bad_line(line_, fmt::format("\"{}\" is not base64", base64_key));
    return cereal::base64::decode(*encoded);
  }

 private:
  const rapidjson::Value& object_;
  std::size_t line_;
};

}  // namespace

std::string format_timestamp(eventstore::Timestamp time) {
  using namespace std::chrono;
  const auto day = floor<days>(time);
  const year_month_day ymd(day);
  const hh_mm_ss<microseconds> clock(time - day);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     clock.hours().count(), clock.minutes().count(), clock.seconds().count(),
                     clock.subseconds().count());
}

std::optional<eventstore::Timestamp> parse_timestamp(std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS.ffffffZ
  if (text.size() != 27 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text[19] != '.' || text[26] != 'Z')
    return std::nullopt;
  auto number = [&](std::size_t at, std::size_t digits) -> std::optional<long> {
    long value = 0;
    for (std::size_t i = at; i < at + digits; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  auto y = number(0, 4), mo = number(5, 2), d = number(8, 2), h = number(11, 2), mi = number(14, 2),
       s = number(17, 2), us = number(20, 6);
  if (!y || !mo || !d || !h || !mi || !s || !us) return std::nullopt;
  const year_month_day ymd{year(static_cast<int>(*y)), month(static_cast<unsigned>(*mo)),
                           day(static_cast<unsigned>(*d))};
  if (!ymd.ok() || *h > 23 || *mi > 59 || *s > 59) return std::nullopt;
  return eventstore::Timestamp(sys_days(ymd)) + hours(*h) + minutes(*mi) + seconds(*s) +
         microseconds(*us);
}

std::string json_string(std::string_view text) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  write_string(w, text);
  return finish(buffer);
}

std::string event_line(const eventstore::RecordedEvent& e, PayloadMode mode,
                       bool with_event_number) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("stream");
  write_string(w, e.stream_id);
  w.Key("version");
  w.Int64(e.stream_version);
  w.Key("position");
  w.Int64(e.global_position);
  if (with_event_number) {
    w.Key("event_number");
    w.Int64(e.event_number);
  }
  w.Key("id");
  write_string(w, e.event_id.to_string());
  w.Key("type");
  write_string(w, e.type);
  write_payload(w, "data", e.data, mode);
  write_payload(w, "metadata", e.metadata, mode);
  if (e.causation_id) {
    w.Key("causation_id");
    write_string(w, e.causation_id->to_string());
  }
  if (e.correlation_id) {
    w.Key("correlation_id");
    write_string(w, e.correlation_id->to_string());
  }
  w.Key("created_at");
  write_string(w, format_timestamp(e.created_at));
  w.EndObject();
  return finish(buffer);
}

std::string link_line(std::string_view stream, eventstore::StreamVersion version, const Uuid& id) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("link");
  w.Key("stream");
  write_string(w, stream);
  w.Key("version");
  w.Int64(version);
  w.Key("id");
  write_string(w, id.to_string());
  w.EndObject();
  return finish(buffer);
}

std::string deleted_line(std::string_view stream) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("deleted");
  w.Key("stream");
  write_string(w, stream);
  w.EndObject();
  return finish(buffer);
}

std::string snapshot_line(const eventstore::Snapshot& s, PayloadMode mode) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("kind");
  w.String("snapshot");
  w.Key("source");
  write_string(w, s.source_id);
  w.Key("source_version");
  w.Int64(s.source_version);
  w.Key("source_type");
  write_string(w, s.source_type);
  write_payload(w, "data", s.data, mode);
  write_payload(w, "metadata", s.metadata, mode);
  w.Key("created_at");
  write_string(w, format_timestamp(s.created_at));
  w.EndObject();
  return finish(buffer);
}

std::string stream_line(const eventstore::StreamInfo& info) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("stream");
  write_string(w, info.stream_id);
  w.Key("version");
  w.Int64(info.version);
  w.Key("sequence");
  w.Int64(info.sequence);
  w.Key("created_at");
  write_string(w, format_timestamp(info.created_at));
  w.Key("deleted");
  w.Bool(info.deleted());
  if (info.deleted_at) {
    w.Key("deleted_at");
    write_string(w, format_timestamp(*info.deleted_at));
  }
  w.EndObject();
  return finish(buffer);
}

std::string subscription_line(const eventstore::SubscriptionInfo& info) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("name");
  write_string(w, info.stored.name);
  w.Key("stream");
  write_string(w, info.stored.stream_id);
  w.Key("checkpoint");
  w.Int64(info.stored.checkpoint);
  w.Key("head");
  w.Int64(info.head);
  w.Key("lag");
  w.Int64(info.lag);
  w.Key("lease_token");
  w.Int64(info.stored.lease_token);
  w.Key("held");
  w.Bool(info.stored.held);
  if (!info.stored.holder.empty()) {
    w.Key("holder");
    write_string(w, info.stored.holder);
  }
  w.EndObject();
  return finish(buffer);
}

InputRecord parse_input_line(std::string_view line, std::size_t line_number) {
  if (!nesting_within_limit(line))
    bad_line(line_number, fmt::format("JSON nested deeper than {} levels", kMaxJsonDepth));
  rapidjson::Document document;
  document.Parse<kParseFlags>(line.data(), line.size());
  if (document.HasParseError()) {
    bad_line(line_number, fmt::format("invalid JSON at offset {}: {}", document.GetErrorOffset(),
                                      rapidjson::GetParseError_En(document.GetParseError())));
  }
  if (!document.IsObject()) bad_line(line_number, "not a JSON object");
  LineReader r(document, line_number);
  InputRecord record;
  const std::string kind = r.string("kind").value_or("event");
  if (kind == "event") {
    record.kind = InputRecord::Kind::event;
    record.stream = r.required_string("stream");
    record.version = r.integer("version");
    record.event.type = r.required_string("type");
    record.event.data = r.payload("data");
    record.event.metadata = r.payload("metadata");
    record.event.id = r.uuid("id");
    record.event.causation_id = r.uuid("causation_id");
    record.event.correlation_id = r.uuid("correlation_id");
    record.event.created_at = r.timestamp("created_at");
  } else if (kind == "link") {
    record.kind = InputRecord::Kind::link;
    record.stream = r.required_string("stream");
    record.version = r.integer("version");
    auto id = r.uuid("id");
    if (!id) bad_line(line_number, "\"id\" is missing");
    record.link_target = *id;
  } else if (kind == "deleted") {
    record.kind = InputRecord::Kind::deleted;
    record.stream = r.required_string("stream");
  } else if (kind == "snapshot") {
    record.kind = InputRecord::Kind::snapshot;
    record.snapshot.source_id = r.required_string("source");
    record.snapshot.source_version = r.integer("source_version").value_or(0);
    record.snapshot.source_type = r.required_string("source_type");
    record.snapshot.data = r.payload("data");
    record.snapshot.metadata = r.payload("metadata");
    record.snapshot.created_at = r.timestamp("created_at").value_or(eventstore::Timestamp{});
  } else {
    bad_line(line_number,
             fmt::format("unknown \"kind\" '{}' (event, link, deleted, snapshot)", kind));
  }
  return record;
}

}  // namespace gamebot::tools
