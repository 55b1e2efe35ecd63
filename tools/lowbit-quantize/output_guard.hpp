#pragma once
// What lowbit-quantize writes, checked before any work and written safely (docs/cli.md,
// "Checks before any work"):
//   - an output must be absent or a regular file: a symbolic link, device, FIFO, socket or
//     directory is refused (never written through, never replaced);
//   - an output must not be one of the inputs, compared by device and inode (so a hard
//     link, a symbolic link to it or "./a" vs "a" are all the same file), nor another output;
//   - the output's directory must exist and take a new file (a temporary is created and
//     removed there), so a read-only or missing directory fails before minutes of work;
//   - outputs are written atomically (lowbit/io/atomic_file.hpp) and the temporaries are
//     removed on SIGINT / SIGTERM / SIGHUP (install_signal_cleanup), then the signal is
//     re-raised so the exit status still says which signal ended the run;
//   - a sweep holds an exclusive flock on <csv>.lock for its whole run, so two sweeps never
//     write one CSV (the second stops at once, naming the lock).
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "lowbit-quantize/cli_args.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lowbit::tools {

struct named_path {
  std::string flag;  // the option that names it ("--model")
  std::string path;
};

// A lowbit::error's message without the library's "lowbit: " prefix (for the tool's own).
inline std::string plain_message(const std::exception& e) {
  std::string m = e.what();
  return m.rfind("lowbit: ", 0) == 0 ? m.substr(8) : m;
}

inline const char* file_kind(mode_t m) {
  return S_ISREG(m)    ? "a regular file"
         : S_ISLNK(m)  ? "a symbolic link"
         : S_ISDIR(m)  ? "a directory"
         : S_ISCHR(m)  ? "a character device"
         : S_ISBLK(m)  ? "a block device"
         : S_ISFIFO(m) ? "a FIFO"
         : S_ISSOCK(m) ? "a socket"
                       : "not a regular file";
}

// Refuses `out` (usage_error, exit 2) unless it can be written without harm: see the top.
// `inputs` are the files the run reads, `others` the other outputs. create_dir: make the
// directory first (the sweep's tables) instead of requiring it.
inline void check_output(const named_path& out, const std::vector<named_path>& inputs,
                         const std::vector<named_path>& others = {}, bool create_dir = false) {
  using cli::usage_error;
  const std::string& p = out.path;
  if (p.empty()) cli::bad_value(out.flag, "a file name", p);
  const std::string what = out.flag + " '" + p + "'";
  struct stat st {};
  if (::lstat(p.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode))
      throw usage_error(what + " is a symbolic link: outputs are written only as regular files, never through a link "
                               "(pass the file it points to, or remove the link)");
    if (!S_ISREG(st.st_mode))
      throw usage_error(what + " is " + file_kind(st.st_mode) + ", not a regular file: refusing to replace it");
    auto same = [&](const named_path& other) {
      struct stat o {};
      return !other.path.empty() && ::stat(other.path.c_str(), &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino;
    };
    for (const auto& in : inputs)
      if (same(in))
        throw usage_error(what + " is the same file as " + in.flag + " '" + in.path +
                          "': writing it would destroy the input (choose another output file)");
    for (const auto& o : others)
      if (same(o)) throw usage_error(what + " is the same file as " + o.flag + " '" + o.path + "'");
  } else if (errno != ENOENT && errno != ENOTDIR) {
    throw usage_error(what + " cannot be inspected: " + std::strerror(errno));
  }
  // Not yet existing outputs may still collide with each other by name.
  for (const auto& o : others)
    if (std::filesystem::path(o.path).lexically_normal() == std::filesystem::path(p).lexically_normal())
      throw usage_error(what + " is the same file as " + o.flag + " '" + o.path + "'");
  const std::filesystem::path parent = std::filesystem::path(p).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  if (create_dir && !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) throw usage_error(what + ": cannot create its directory '" + dir + "': " + ec.message());
  }
  struct stat ds {};
  if (::stat(dir.c_str(), &ds) != 0)
    throw usage_error(what + ": its directory '" + dir + "' " +
                      (errno == ENOENT ? std::string("does not exist") : "cannot be inspected: " + std::string(std::strerror(errno))));
  if (!S_ISDIR(ds.st_mode)) throw usage_error(what + ": '" + dir + "' is not a directory");
  try {
    // The write's own first step, undone at once: a temporary next to the output.
    lowbit::io::atomic_file_writer probe(p);
  } catch (const std::exception& e) {
    throw usage_error(what + ": cannot create files in its directory '" + dir + "' (" + plain_message(e) + ")");
  }
}

// The signal handler: remove the temporaries in flight, then die of the same signal
// (SA_RESETHAND restored the default action; the re-raised signal is delivered on return).
inline void on_fatal_signal(int sig) {
  lowbit::io::remove_pending_temporaries();
  std::raise(sig);
}

inline void install_signal_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

// Writes `bytes` to `path` atomically (temporary, fsync, rename); a runtime error names the
// option. LOWBIT_QUANTIZE_RAISE_BEFORE_COMMIT=<signal number> raises that signal once the
// temporary is complete and before the rename: the worst moment to be killed, for tests.
inline void write_output(const std::string& flag, const std::string& path, std::span<const std::byte> bytes) {
  try {
    lowbit::io::atomic_file_writer w(path);
    w.write(bytes);
    if (const char* s = std::getenv("LOWBIT_QUANTIZE_RAISE_BEFORE_COMMIT"); s != nullptr && *s != '\0')
      std::raise(std::atoi(s));
    w.commit();
  } catch (const lowbit::error& e) {
    lowbit::detail::fail("cannot write ", flag, " '", path, "': ", plain_message(e));
  }
}

// An exclusive lock on `<csv>.lock` for the rest of the process (the descriptor is kept
// open; the kernel releases the lock when the process ends, however it ends). Fails at once
// when another process holds it.
inline void lock_for_sweep(const std::string& csv) {
  const std::string lock = csv + ".lock";
  const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    lowbit::detail::fail("cannot open the lock file '", lock, "' of --csv '", csv, "': ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    lowbit::detail::fail("the lock file '", lock, "' of --csv '", csv, "' is not a regular file");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK)
      lowbit::detail::fail("--csv '", csv, "' is in use by another sweep (it holds '", lock,
                           "'): wait for that sweep to finish, or pass another --csv");
    lowbit::detail::fail("cannot lock '", lock, "': ", std::strerror(e));
  }
  // fd stays open: the lock lasts as long as the process.
}

}  // namespace lowbit::tools
