#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// Bounds-checked access to untrusted bytes, shared by the GGUF and safetensors readers.
//
// Model files come from the network: every count, length and offset in them is an attacker's
// number until checked. byte_reader never reads past its span, and every failure is a
// lowbit::error naming what was being read and where, never a crash or an over-allocation.
// file_bytes holds a whole file either memory-mapped (POSIX) or read into memory.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "lowbit/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define LOWBIT_IO_HAVE_MMAP 1
#endif

namespace lowbit::inline LOWBIT_ABI::io {

static_assert(std::endian::native == std::endian::little,
              "lowbit::io readers assume a little-endian host (GGUF and safetensors are little-endian)");

// The immutable bytes of one file (or of a caller's buffer). Shared, so readers that hand out
// views into the data stay valid as long as any copy of the reader lives.
class file_bytes {
 public:
  // Maps (or reads) the file at `path`. Throws lowbit::error when it cannot be opened.
  static std::shared_ptr<const file_bytes> open(const std::string& path) {
    auto fb = std::shared_ptr<file_bytes>(new file_bytes());
#if defined(LOWBIT_IO_HAVE_MMAP)
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) lowbit::detail::fail("cannot open file '", path, "' for reading");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      lowbit::detail::fail("'", path, "' is not a regular file");
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    if (size > 0) {
      void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        fb->map_ = p;
        fb->data_ = static_cast<const std::byte*>(p);
        fb->size_ = size;
      }
    }
    ::close(fd);
    if (size == 0 || fb->map_ != nullptr) return fb;
    // mmap refused (e.g. a special file system): fall back to reading.
#endif
    std::ifstream in(path, std::ios::binary);
    if (!in) lowbit::detail::fail("cannot open file '", path, "' for reading");
    in.seekg(0, std::ios::end);
    const std::streamoff end = in.tellg();
    if (end < 0) lowbit::detail::fail("cannot determine the size of '", path, "'");
    in.seekg(0, std::ios::beg);
    fb->owned_.resize(static_cast<std::size_t>(end));
    if (end > 0 && !in.read(reinterpret_cast<char*>(fb->owned_.data()), end))
      lowbit::detail::fail("cannot read '", path, "'");
    fb->data_ = fb->owned_.data();
    fb->size_ = fb->owned_.size();
    return fb;
  }

  // Takes ownership of a caller's buffer (tests, fuzzers, in-memory files).
  static std::shared_ptr<const file_bytes> from_memory(std::vector<std::byte> bytes) {
    auto fb = std::shared_ptr<file_bytes>(new file_bytes());
    fb->owned_ = std::move(bytes);
    fb->data_ = fb->owned_.data();
    fb->size_ = fb->owned_.size();
    return fb;
  }

  file_bytes(const file_bytes&) = delete;
  file_bytes& operator=(const file_bytes&) = delete;
  ~file_bytes() {
#if defined(LOWBIT_IO_HAVE_MMAP)
    if (map_ != nullptr) ::munmap(map_, size_);
#endif
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }

 private:
  file_bytes() = default;
  std::vector<std::byte> owned_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  void* map_ = nullptr;
};

namespace detail {

// Overflow-checked arithmetic for sizes computed from file contents.
inline std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) lowbit::detail::fail(what, ": size overflows 64 bits");
  return r;
}
inline std::uint64_t checked_add(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) lowbit::detail::fail(what, ": size overflows 64 bits");
  return r;
}

// A cursor over untrusted little-endian bytes. `context` ("GGUF file 'x.gguf'") prefixes
// every error so the user knows which file is broken.
class byte_reader {
 public:
  byte_reader(std::span<const std::byte> bytes, std::string context)
      : bytes_(bytes), context_(std::move(context)) {}

  std::size_t pos() const { return pos_; }
  std::size_t size() const { return bytes_.size(); }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  const std::string& context() const { return context_; }

  // Fails unless `n` more bytes are available for `what`.
  void need(std::uint64_t n, std::string_view what) const {
    if (n > remaining())
      lowbit::detail::fail(context_, ": truncated while reading ", what, " at byte ", pos_, " (needs ", n,
                           " bytes, ", remaining(), " left)");
  }

  template <class T>
  T read(std::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::span<const std::byte> read_bytes(std::uint64_t n, std::string_view what) {
    need(n, what);
    auto s = bytes_.subspan(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }

  // A string of `n` bytes (no terminator). The caller has already bounded n by the file.
  std::string read_string(std::uint64_t n, std::string_view what) {
    auto s = read_bytes(n, what);
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
  }

  void seek(std::uint64_t p, std::string_view what) {
    if (p > bytes_.size())
      lowbit::detail::fail(context_, ": ", what, " at byte ", p, " lies beyond the end of the file (", bytes_.size(),
                           " bytes)");
    pos_ = static_cast<std::size_t>(p);
  }

  template <class... Parts>
  [[noreturn]] void fail(Parts&&... parts) const {
    lowbit::detail::fail(context_, ": ", std::forward<Parts>(parts)...);
  }

 private:
  std::span<const std::byte> bytes_;
  std::string context_;
  std::size_t pos_ = 0;
};

}  // namespace detail
}  // namespace lowbit::io
