// Runs the kvcache binary and captures its output, for end-to-end CLI tests.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace kvc::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string KvcacheBin() { return std::string(KVC_BIN_DIR) + "/kvcache"; }

// A path in the temp directory unique to this test process: <tmp>/<prefix><pid><suffix>.
inline std::string TempPath(const std::string& prefix, const std::string& suffix = "") {
  return (std::filesystem::temp_directory_path() / (prefix + std::to_string(::getpid()) + suffix)).string();
}

// Runs `kvcache <args>` through the shell (args must be shell-quoted by the caller).
inline CliResult RunKvcache(const std::string& args) {
  const std::string err_path = TempPath("kvc_cli_err_");
  const std::string cmd = KvcacheBin() + " " + args + " 2>" + err_path;
  CliResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream e(err_path);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::filesystem::remove(err_path);
  return r;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace kvc::testing
