#include "preflight_cache.hpp"

#include <elf.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gamebot/harness/caches.hpp"
#include "gamebot/repo/migrator.hpp"
#include "private_directory.hpp"

namespace fs = std::filesystem;

namespace gamebot::harness::detail {

namespace {

// The GNU build id note of a loaded object, hex; empty when it has none.
std::string build_id_of(const dl_phdr_info& info) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (ElfW(Half) i = 0; i < info.dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info.dlpi_phdr[i];
    if (header.p_type != PT_NOTE) continue;
    const auto* at = reinterpret_cast<const unsigned char*>(info.dlpi_addr + header.p_vaddr);
    const unsigned char* end = at + header.p_memsz;
    while (at + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) note;
      std::memcpy(&note, at, sizeof note);
      const unsigned char* name = at + sizeof note;
      const unsigned char* desc = name + ((note.n_namesz + 3) & ~3u);
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
          std::memcmp(name, "GNU", 4) == 0 && desc + note.n_descsz <= end) {
        std::string hex;
        for (ElfW(Word) k = 0; k < note.n_descsz; ++k) {
          hex += kHex[desc[k] >> 4];
          hex += kHex[desc[k] & 15];
        }
        return hex;
      }
      at = desc + ((note.n_descsz + 3) & ~3u);
    }
  }
  return {};
}

struct CodeIdentity {
  std::string text;
  bool complete = true;  // every object was identified
};

// One line per loaded object: its build id, else its file's identity.
CodeIdentity code_identity() {
  CodeIdentity identity;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& out = *static_cast<CodeIdentity*>(data);
        const std::string id = build_id_of(*info);
        const std::string path = info->dlpi_name != nullptr && *info->dlpi_name != '\0'
                                     ? std::string(info->dlpi_name)
                                     : std::string("/proc/self/exe");
        if (!id.empty()) {
          out.text += "build-id " + id + "\n";
          return 0;
        }
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
          // The vDSO has no file; any other object that cannot be identified spoils the key.
          if (path.find("linux-vdso") == std::string::npos) out.complete = false;
          return 0;
        }
        out.text += "file " + std::to_string(st.st_dev) + " " + std::to_string(st.st_ino) + " " +
                    std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                    std::to_string(st.st_mtim.tv_nsec) + "\n";
        return 0;
      },
      &identity);
  return identity;
}

fs::path cache_directory() {
  return caches::preflight_cache(caches::temporary_directory());
}

}  // namespace

std::optional<std::string> preflight_key(const serializers::TypeRegistry& registry,
                                         const serializers::ConformanceOptions& options) {
  std::optional<std::string> inputs = serializers::conformance_inputs(registry, options);
  if (!inputs) return std::nullopt;
  const CodeIdentity code = code_identity();
  if (!code.complete) return std::nullopt;
  // The repo's SHA-256 (named for migrations, but a plain hex digest of any text).
  return repo::Migrator::checksum(code.text + *inputs);
}

std::optional<std::size_t> remembered_pass(const std::string& key) {
  const fs::path dir = cache_directory();
  if (!is_private_directory(dir)) return std::nullopt;
  std::ifstream in(dir / key);
  std::size_t entries = 0;
  if (!(in >> entries)) return std::nullopt;
  return entries;
}

void remember_pass(const std::string& key, std::size_t entries) noexcept {
  try {
    const fs::path dir = cache_directory();
    ensure_private_directory(dir);
    replace_private_file(dir / key, std::to_string(entries) + "\n");
  } catch (const std::exception&) {
    // Not remembered: the next process runs the suite.
  }
}

}  // namespace gamebot::harness::detail
