// export and import: a whole store as JSON lines (see event_json.hpp), so a
// store moves between backends (SQLite <-> PostgreSQL) keeping every id, type,
// payload byte, metadata byte, version and created_at.
//
// Order of an export: `$all` in position order, each stream's links placed
// just before the first own event that came after them in the stream (a link
// always comes after its target in `$all`, so importing in file order
// recreates every stream's versions); links after a stream's last own event
// follow `$all`; then soft deletions, then snapshots.

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "event_json.hpp"

namespace gamebot::tools {

namespace {

using namespace eventstore;

struct PendingLink {
  StreamVersion version = 0;
  Uuid target;
};

// stdout, or a file opened for writing.
class Output {
 public:
  explicit Output(const std::optional<std::string>& path) {
    if (!path || *path == "-") return;
    file_ = std::fopen(path->c_str(), "wb");
    if (file_ == nullptr)
      throw Error(FaultClass::configuration, fmt::format("cannot write {}", *path));
  }
  ~Output() {
    if (file_ != nullptr) std::fclose(file_);
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;
  void line(std::string_view text) {
    FILE* out = file_ != nullptr ? file_ : stdout;
    std::fwrite(text.data(), 1, text.size(), out);
    std::fputc('\n', out);
  }
  void close() {
    FILE* out = file_ != nullptr ? file_ : stdout;
    if (std::fflush(out) != 0 || std::ferror(out))
      throw Error(FaultClass::internal, "writing the export failed");
  }

 private:
  FILE* file_ = nullptr;
};

int run_export(const Args& args) {
  const PayloadMode mode = args.has("base64") ? PayloadMode::base64 : PayloadMode::automatic;
  EventStore store = open_store(parse_store_url(args.positionals[0]), false);
  Output out(args.value("output"));

  // Every listed stream; the links of the live ones.
  std::vector<StreamInfo> streams;
  std::map<std::string, std::vector<PendingLink>, std::less<>> links;
  {
    StreamListQuery query;
    query.limit = 1000;
    for (;;) {
      StreamListPage page = store.list_streams(query);
      for (StreamInfo& info : page.streams) streams.push_back(std::move(info));
      if (!page.next_after) break;
      query.after_sequence = *page.next_after;
    }
    for (const StreamInfo& info : streams) {
      if (info.deleted()) continue;
      for (const RecordedEvent& e : store.stream_forward(info.stream_id)) {
        if (e.stream_id != info.stream_id)
          links[info.stream_id].push_back(PendingLink{e.event_number, e.event_id});
      }
    }
  }
  std::map<std::string, std::size_t, std::less<>> next_link;  // stream -> index into links

  auto emit_links_before = [&](std::string_view stream, StreamVersion version) {
    auto it = links.find(stream);
    if (it == links.end()) return;
    std::size_t& next = next_link[std::string(stream)];
    while (next < it->second.size() && it->second[next].version < version) {
      out.line(link_line(stream, it->second[next].version, it->second[next].target));
      ++next;
    }
  };

  Progress progress("exported events");
  std::uint64_t events = 0;
  for (const RecordedEvent& e : store.all_forward()) {
    emit_links_before(e.stream_id, e.stream_version);
    out.line(event_line(e, mode, false));
    progress.update(++events);
  }
  std::uint64_t link_count = 0;
  for (const auto& [stream, list] : links) link_count += list.size();
  for (const StreamInfo& info : streams)
    emit_links_before(info.stream_id, std::numeric_limits<StreamVersion>::max());
  std::uint64_t deleted = 0;
  for (const StreamInfo& info : streams) {
    if (!info.deleted()) continue;
    out.line(deleted_line(info.stream_id));
    ++deleted;
  }
  std::uint64_t snapshots = 0;
  for (const StreamInfo& info : streams) {
    if (auto snapshot = store.read_snapshot(info.stream_id)) {
      out.line(snapshot_line(*snapshot, mode));
      ++snapshots;
    }
  }
  out.close();
  progress.finish();
  std::fprintf(stderr, "exported %llu events, %llu links, %llu deleted streams, %llu snapshots\n",
               static_cast<unsigned long long>(events), static_cast<unsigned long long>(link_count),
               static_cast<unsigned long long>(deleted),
               static_cast<unsigned long long>(snapshots));
  return kExitOk;
}

// Consecutive events of one stream with consecutive versions, appended as one batch.
class Importer {
 public:
  explicit Importer(EventStore& store) : store_(store) {}

  void add(InputRecord&& record, std::size_t line_number) {
    switch (record.kind) {
      case InputRecord::Kind::event:
        add_event(std::move(record), line_number);
        return;
      case InputRecord::Kind::link: {
        flush();
        if (!record.version || *record.version < 1) {
          throw Error(FaultClass::serialization,
                      fmt::format("line {}: a link needs \"version\" >= 1", line_number));
        }
        const Uuid target = record.link_target;
        check(line_number, "link into", record.stream,
              store_.link(record.stream, ExpectedVersion::exact(*record.version - 1),
                          std::span<const Uuid>(&target, 1)));
        ++links_;
        return;
      }
      case InputRecord::Kind::deleted:
        flush();
        check(line_number, "delete", record.stream,
              store_.delete_stream(record.stream, ExpectedVersion::any()));
        ++deleted_;
        return;
      case InputRecord::Kind::snapshot:
        flush();
        store_.record_snapshot(std::move(record.snapshot));
        ++snapshots_;
        return;
    }
  }

  void flush() {
    if (batch_.empty()) return;
    const ExpectedVersion expected = batch_first_version_
                                         ? ExpectedVersion::exact(*batch_first_version_ - 1)
                                         : ExpectedVersion::any();
    check(batch_line_, "append to", batch_stream_, store_.append(batch_stream_, expected, batch_));
    events_ += batch_.size();
    batch_.clear();
  }

  std::uint64_t events() const noexcept { return events_; }
  std::string summary() const {
    return fmt::format("imported {} events, {} links, {} deleted streams, {} snapshots", events_,
                       links_, deleted_, snapshots_);
  }

 private:
  void add_event(InputRecord&& record, std::size_t line_number) {
    const bool continues =
        !batch_.empty() && record.stream == batch_stream_ && batch_.size() < 1000 &&
        (record.version.has_value() == batch_first_version_.has_value()) &&
        (!record.version ||
         *record.version == *batch_first_version_ + static_cast<StreamVersion>(batch_.size()));
    if (!continues) {
      flush();
      batch_stream_ = record.stream;
      batch_first_version_ = record.version;
      batch_line_ = line_number;
      if (record.version && *record.version < 1) {
        throw Error(FaultClass::serialization,
                    fmt::format("line {}: \"version\" must be >= 1", line_number));
      }
    }
    batch_.push_back(std::move(record.event));
  }

  static void check(std::size_t line_number, std::string_view what, std::string_view stream,
                    const WriteResult& result) {
    if (result.ok()) return;
    std::string detail = fmt::format("line {}: {} '{}': {} (stream version {})", line_number, what,
                                     stream, to_string(result.status), result.version);
    if (result.event_id) detail += fmt::format(", event {}", result.event_id->to_string());
    throw Failure(result.status == WriteStatus::wrong_expected_version ? FaultClass::concurrency
                                                                       : FaultClass::integrity,
                  detail + " (import into an empty store)");
  }

  EventStore& store_;
  std::string batch_stream_;
  std::optional<StreamVersion> batch_first_version_;
  std::size_t batch_line_ = 0;
  std::vector<EventData> batch_;
  std::uint64_t events_ = 0, links_ = 0, deleted_ = 0, snapshots_ = 0;
};

int run_import(const Args& args) {
  std::unique_ptr<std::ifstream> file;
  std::istream* in = &std::cin;
  if (auto path = args.value("input"); path && *path != "-") {
    file = std::make_unique<std::ifstream>(*path, std::ios::binary);
    if (!*file) throw Error(FaultClass::configuration, fmt::format("cannot read {}", *path));
    in = file.get();
  }
  EventStore store = open_store(parse_store_url(args.positionals[0]), true);
  Importer importer(store);
  Progress progress("imported events");
  std::string line;
  std::size_t line_number = 0;
  while (std::getline(*in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    importer.add(parse_input_line(line, line_number), line_number);
    progress.update(importer.events());
  }
  importer.flush();
  progress.update(importer.events());
  progress.finish();
  std::fprintf(stderr, "%s\n", importer.summary().c_str());
  return kExitOk;
}

}  // namespace

void add_transfer_commands(std::vector<Command>& commands) {
  commands.push_back(
      {{"export",
        {"URL"},
        "Write the whole store as JSON lines: events in $all order, links, soft deletions, "
        "snapshots.",
        "Payloads that are JSON texts written back byte for byte go as \"data\"/\"metadata\",\n"
        "others as \"data_base64\"/\"metadata_base64\": `import` restores every byte, id,\n"
        "version and created_at. Not exported: global positions (the target assigns its own,\n"
        "in the same order), links inside soft-deleted streams (unreadable), snapshots whose\n"
        "source id is not a stream id, subscription checkpoints. Progress on stderr when it is\n"
        "a terminal.\n",
        {{"output", "FILE", "write to FILE instead of stdout"},
         {"base64", "", "payloads always as base64"}}},
       run_export});
  commands.push_back(
      {{"import",
        {"URL"},
        "Read JSON lines (export's format, or append's) into the store at URL.",
        "Creates the schema if needed. Events keep their id, created_at and \"version\" (each is\n"
        "appended with the expected version version-1, so importing into a store that already\n"
        "has those streams fails with exit 1 instead of mixing them). Progress on stderr when\n"
        "it is a terminal.\n",
        {{"input", "FILE", "read FILE instead of stdin"}}},
       run_import});
}

}  // namespace gamebot::tools
