// The real `kvcache serve` binary: started on a free loopback port (--port 0, the port read from
// its startup line), it answers a request and stops cleanly (exit 0) on SIGTERM and on SIGINT.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/synth_fixture.h"

namespace kvc {
namespace {

using json = nlohmann::json;

// A child `kvcache serve ...` whose stderr is read through a pipe.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      const std::string bin = testing::KvcacheBin();
      std::vector<char*> argv{const_cast<char*>(bin.c_str()), const_cast<char*>("serve")};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    err_fd_ = fds[0];
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  // Reads stderr until the startup line names the port (0: it exited or timed out).
  int WaitForPort(int timeout_ms = 60000) {
    const std::regex re("on http://127\\.0\\.0\\.1:(\\d+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      if (std::regex_search(err_, m, re)) return std::stoi(m[1]);
      if (!ReadSome(200)) return 0;
    }
    return 0;
  }
  // Sends `sig` and waits for the exit; the exit code, or 128 + the signal that killed it.
  int Stop(int sig) {
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    while (ReadSome(100)) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& err() const { return err_; }
  bool started() const { return pid_ > 0 && err_fd_ >= 0; }

 private:
  // False at end of file.
  bool ReadSome(int timeout_ms) {
    pollfd p{err_fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return true;
    char buf[4096];
    const ssize_t n = ::read(err_fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    err_.append(buf, n);
    return true;
  }

  pid_t pid_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  std::string err_;
};

void ServeOneRequestThenStop(int sig) {
  ServeProcess serve({"-m", testing::SynthModelPath("tiny"), "--host", "127.0.0.1", "--port", "0", "-t", "1",
                      "--alias", "tiny-cli"});
  ASSERT_TRUE(serve.started());
  const int port = serve.WaitForPort();
  ASSERT_GT(port, 0) << serve.err();
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  auto h = c.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto r = c.Post("/v1/completions",
                  json{{"model", "tiny-cli"}, {"prompt", "Once upon a time"}, {"max_tokens", 6}, {"temperature", 0}}.dump(),
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["model"], "tiny-cli");
  EXPECT_GT(j["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(serve.Stop(sig), 0) << serve.err();
  EXPECT_NE(serve.err().find("stopping (signal " + std::to_string(sig) + ")"), std::string::npos) << serve.err();
  // The port is free again: nothing answers there.
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(1, 0);
  EXPECT_FALSE(after.Get("/health"));
}

TEST(ServeCommand, AnswersOnAFreePortAndStopsCleanlyOnSigterm) { ServeOneRequestThenStop(SIGTERM); }

TEST(ServeCommand, StopsCleanlyOnSigint) { ServeOneRequestThenStop(SIGINT); }

TEST(ServeCommand, RefusesWhatItCannotServe) {
  const std::string model = testing::SynthModelPath("tiny");
  auto r = testing::RunKvcache("serve -m " + model + " --port 0 --kv-layout contiguous");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("paged"), std::string::npos) << r.err;
  r = testing::RunKvcache("serve -m " + model + " --port 0 --kv-window 64 --kv-sinks 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--kv-sinks"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvc
