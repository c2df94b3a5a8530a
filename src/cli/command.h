// Subcommands register themselves here, one file each; main() builds the CLI from the registry.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kvc::cli {

// Declares the options of a subcommand on `sub` and returns the function that runs it (after
// parsing) and yields the process exit code.
using CommandSetup = std::function<std::function<int()>(CLI::App& sub)>;

struct CommandInfo {
  std::string name;
  std::string help;
  CommandSetup setup;
};

std::vector<CommandInfo>& CommandRegistry();

struct RegisterCommand {
  RegisterCommand(std::string name, std::string help, CommandSetup setup) {
    CommandRegistry().push_back({std::move(name), std::move(help), std::move(setup)});
  }
};

// Prints "error: <message>" to stderr and returns the exit code for failures.
int Fail(const std::string& message);

}  // namespace kvc::cli
