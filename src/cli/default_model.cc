#include "cli/default_model.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "model/presets.h"
#include "model/synth.h"

namespace kvc::cli {

Result<std::string> EnsureDefaultModel(const std::string& preset, DType type, int32_t min_context) {
  KVC_ASSIGN_OR_RETURN(ModelConfig config, FindPreset(preset));
  if (config.context_length < min_context) config.context_length = min_context;
  std::filesystem::path dir;
  if (const char* d = std::getenv("KVCACHE_MODEL_DIR")) {
    dir = d;
  } else if (const char* home = std::getenv("HOME")) {
    dir = std::filesystem::path(home) / ".cache" / "kvcache";
  } else {
    dir = std::filesystem::temp_directory_path() / "kvcache";
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir.string() + ": " + ec.message());
  const std::string name = preset + "-" + std::string(DTypeName(type)) + "-ctx" +
                           std::to_string(config.context_length) + ".gguf";
  const std::string path = (dir / name).string();
  if (std::filesystem::exists(path)) return path;
  std::fprintf(stderr, "synthesizing %s (random weights, preset %s) ...\n", path.c_str(), preset.c_str());
  SynthOptions opt;
  opt.config = config;
  opt.type = type;
  // Write to a temporary name first so an interrupted run never leaves a truncated model.
  const std::string tmp = path + ".part";
  KVC_RETURN_IF_ERROR(SynthesizeModel(opt, tmp).status());
  std::filesystem::rename(tmp, path, ec);
  if (ec) return IoError("cannot rename " + tmp + ": " + ec.message());
  return path;
}

}  // namespace kvc::cli
