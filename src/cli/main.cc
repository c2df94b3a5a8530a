// kvcache: the command-line front end. Each subcommand lives in its own *_cmd.cc file.
#include <algorithm>
#include <cstdio>

#include "cli/command.h"

namespace kvc::cli {

std::vector<CommandInfo>& CommandRegistry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

}  // namespace kvc::cli

int main(int argc, char** argv) {
  using namespace kvc::cli;
  CLI::App app{"kvcache: an LLM inference engine built around the KV cache"};
  app.require_subcommand(1);
  auto& registry = CommandRegistry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> runs;
  for (CommandInfo& c : registry) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    runs.emplace_back(sub, c.setup(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  return 1;
}
