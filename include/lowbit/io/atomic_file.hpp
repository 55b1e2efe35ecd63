#pragma once
// write_file_atomic: a reader never sees a half-written model file. The bytes go to a
// temporary file in the same directory, are flushed to disk (fsync), and the temporary is
// renamed over the destination, which POSIX makes atomic; the directory is synced so the
// rename itself survives a crash. On failure the temporary is removed and the old file kept.
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "lowbit/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#define LOWBIT_IO_HAVE_POSIX_FILES 1
#endif

namespace lowbit::io {

inline void write_file_atomic(const std::string& path, std::span<const std::byte> bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
#if defined(LOWBIT_IO_HAVE_POSIX_FILES)
  std::string tmpl = (dir / (target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(tmpl.data());
  if (fd < 0) lowbit::detail::fail("cannot create a temporary file next to '", path, "': ", std::strerror(errno));
  auto cleanup_fail = [&](const char* what) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    lowbit::detail::fail("writing '", path, "' failed (", what, "): ", std::strerror(e));
  };
  const std::byte* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      cleanup_fail("write");
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) cleanup_fail("chmod");
  if (::fsync(fd) != 0) cleanup_fail("fsync");
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    lowbit::detail::fail("writing '", path, "' failed (close): ", std::strerror(e));
  }
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmpl.c_str());
    lowbit::detail::fail("cannot rename the temporary file onto '", path, "': ", std::strerror(e));
  }
  // Persist the directory entry (best effort: some file systems refuse fsync on directories).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
#else
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
