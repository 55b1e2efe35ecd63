#pragma once
#include "lowbit/core/abi.hpp"  // lowbit::inline LOWBIT_ABI (ODR safety)
// write_file_atomic: a reader never sees a half-written model file. The bytes go to a
// temporary file in the same directory, are flushed to disk (fsync), and the temporary is
// renamed over the destination, which POSIX makes atomic; the directory is synced so the
// rename itself survives a crash. On failure the temporary is removed and the old file kept.
//
// Only a regular file (or nothing) is ever replaced: a destination that is a symbolic link,
// a device, a FIFO, a socket or a directory is refused (renaming over it would replace the
// link or the node itself, e.g. /dev/null when run as root), checked before the temporary is
// created and again just before the rename.
//
// atomic_file_writer is the same in steps (create the temporary, write, commit) for callers
// that stream or want to act between the steps; its destructor removes an uncommitted
// temporary. While a temporary exists its path is in a fixed-size registry that
// remove_pending_temporaries() empties with async-signal-safe calls only, so a program's
// SIGINT / SIGTERM handler can remove them before it dies (the library installs no handler).
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "lowbit/core/error.hpp"
#include "lowbit/core/shared_state.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#define LOWBIT_IO_HAVE_POSIX_FILES 1
#endif

namespace lowbit::inline LOWBIT_ABI::io {

namespace detail_atomic {

// The temporaries in flight. state: 0 free, 1 claimed (path being made), 2 path is a live
// temporary file. Only lock-free atomics and plain char arrays: readable from a signal handler.
// The registry itself is program-wide (core/shared_state.hpp), so a signal handler set up
// in any TU removes the temporaries of every TU.
inline constexpr int max_pending = shared::max_pending_temporaries;
inline constexpr std::size_t max_path = shared::max_temporary_path;
using pending_slot = shared::pending_temporary;
static_assert(std::atomic<int>::is_always_lock_free, "the temporary-file registry needs lock-free atomics");
inline auto& pending = shared::pending_temporaries;

// A slot for a temporary whose template is `tmpl` (copied in, NUL-terminated); nullptr when
// the registry is full or the path too long (the write still works, just unregistered).
inline pending_slot* claim(const std::string& tmpl) {
  if (tmpl.size() + 1 > max_path) return nullptr;
  for (auto& s : pending) {
    int expected = 0;
    if (s.state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      std::memcpy(s.path, tmpl.c_str(), tmpl.size() + 1);
      return &s;
    }
  }
  return nullptr;
}

#if defined(LOWBIT_IO_HAVE_POSIX_FILES)
// Fails unless `path` is absent or a regular file (lstat: a symbolic link is not followed).
inline void require_replaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    lowbit::detail::fail("cannot inspect '", path, "': ", std::strerror(errno));
  }
  const char* kind = S_ISREG(st.st_mode)    ? nullptr
                     : S_ISLNK(st.st_mode)  ? "a symbolic link"
                     : S_ISDIR(st.st_mode)  ? "a directory"
                     : S_ISCHR(st.st_mode)  ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  if (kind != nullptr)
    lowbit::detail::fail("'", path, "' is ", kind, ": refusing to replace it (only regular files are written, ",
                         "never through or over a link or a device)");
}
#endif

}  // namespace detail_atomic

// Removes every temporary file that an atomic write has created and not yet renamed or
// removed. Async-signal-safe (atomic loads and unlink only): meant for a signal handler,
// which should then restore the default action and re-raise the signal.
inline void remove_pending_temporaries() noexcept {
#if defined(LOWBIT_IO_HAVE_POSIX_FILES)
  for (auto& s : detail_atomic::pending)
    if (s.state.load(std::memory_order_acquire) == 2) ::unlink(s.path);
#endif
}

#if defined(LOWBIT_IO_HAVE_POSIX_FILES)
class atomic_file_writer {
 public:
  // Creates the temporary next to `path` (which must be absent or a regular file).
  explicit atomic_file_writer(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    detail_atomic::require_replaceable(path_);
    const fs::path target(path_);
    dir_ = target.has_parent_path() ? target.parent_path().string() : std::string(".");
    tmp_ = (fs::path(dir_) / (target.filename().string() + ".tmp-XXXXXX")).string();
    slot_ = detail_atomic::claim(tmp_);
    char* name = slot_ != nullptr ? slot_->path : tmp_.data();
    fd_ = ::mkstemp(name);
    if (fd_ < 0) {
      const int e = errno;
      release();
      lowbit::detail::fail("cannot create a temporary file next to '", path_, "': ", std::strerror(e));
    }
    if (slot_ != nullptr) {
      tmp_ = slot_->path;
      slot_->state.store(2, std::memory_order_release);
    }
  }
  atomic_file_writer(const atomic_file_writer&) = delete;
  atomic_file_writer& operator=(const atomic_file_writer&) = delete;
  ~atomic_file_writer() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
    release();
  }

  const std::string& temporary_path() const { return tmp_; }

  void write(std::span<const std::byte> bytes) {
    const std::byte* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        fail_step("write");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  // Syncs the temporary and renames it over the destination (then syncs the directory).
  void commit() {
    if (::fchmod(fd_, 0644) != 0) fail_step("chmod");
    if (::fsync(fd_) != 0) fail_step("fsync");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_step("close");
    detail_atomic::require_replaceable(path_);  // it may have changed since the temporary was made
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      lowbit::detail::fail("cannot rename the temporary file onto '", path_, "': ", std::strerror(e));
    }
    committed_ = true;
    release();
    // Persist the directory entry (best effort: some file systems refuse fsync on directories).
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  [[noreturn]] void fail_step(const char* what) {
    const int e = errno;
    lowbit::detail::fail("writing '", path_, "' failed (", what, "): ", std::strerror(e));
  }
  void release() {
    if (slot_ != nullptr) slot_->state.store(0, std::memory_order_release);
    slot_ = nullptr;
  }

  std::string path_, dir_, tmp_;
  detail_atomic::pending_slot* slot_ = nullptr;
  int fd_ = -1;
  bool committed_ = false;
};
#endif

inline void write_file_atomic(const std::string& path, std::span<const std::byte> bytes) {
#if defined(LOWBIT_IO_HAVE_POSIX_FILES)
  atomic_file_writer w(path);
  w.write(bytes);
  w.commit();
#else
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  const fs::path tmp = dir / (target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) lowbit::detail::fail("cannot create '", tmp.string(), "'");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      lowbit::detail::fail("writing '", tmp.string(), "' failed");
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    lowbit::detail::fail("cannot rename the temporary file onto '", path, "'");
  }
#endif
}

}  // namespace lowbit::io
