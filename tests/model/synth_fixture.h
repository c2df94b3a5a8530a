// Synthetic tiny models (random weights, both architectures) written once per test binary.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "model/presets.h"
#include "model/synth.h"

namespace kvc::testing {

// Path of a synthetic model for `preset` with `type` weights (created on first use).
inline std::string SynthModelPath(const std::string& preset, DType type = DType::kF32,
                                  int32_t context = 0) {
  static std::map<std::string, std::string> made;
  auto config = FindPreset(preset);
  EXPECT_TRUE(config.ok()) << config.status().message();
  const ModelConfig& c = config.value();
  // The shape is part of the name, so a changed preset never reuses a stale file.
  const std::string key = preset + "-" + std::string(DTypeName(type)) + "-" + std::to_string(context) +
                          "-" + std::to_string(c.dim) + "x" + std::to_string(c.n_layers) + "x" +
                          std::to_string(c.n_heads) + "x" + std::to_string(c.n_kv_heads) + "x" +
                          std::to_string(c.ffn_dim) + "x" + std::to_string(c.vocab_size) + "x" +
                          std::to_string(c.context_length);
  if (auto it = made.find(key); it != made.end()) return it->second;
  // Shared by every test process (ctest runs each test alone): the files are deterministic from
  // the seed, written under a temporary name and renamed into place, so they are made once.
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kvc_test_models_" + std::to_string(::getuid()) + "_v1");
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (key + ".gguf")).string();
  if (!std::filesystem::exists(path)) {
    SynthOptions opt;
    opt.config = c;
    if (context > 0) opt.config.context_length = context;
    opt.type = type;
    opt.seed = 42;
    opt.threads = 1;
    const std::string part = path + ".part" + std::to_string(::getpid());
    auto r = SynthesizeModel(opt, part);
    EXPECT_TRUE(r.ok()) << r.status().message();
    std::filesystem::rename(part, path);
  }
  made[key] = path;
  return path;
}

}  // namespace kvc::testing
