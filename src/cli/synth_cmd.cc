// `kvcache synth`: writes a random-weight model of a preset shape as a standard GGUF file.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "model/presets.h"
#include "model/synth.h"

namespace kvc::cli {
namespace {

struct SynthCmdOptions {
  std::string arch;
  std::string preset;
  std::string type;
  uint64_t seed = 1;
  std::string vocab_from;
  std::string output;
  int threads = 0;
};

std::string Human(double v, const char* const* units) {
  int u = 0;
  while (v >= 1000 && units[u + 1]) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f %s", v, units[u]);
  return buf;
}

int RunSynth(const SynthCmdOptions& opt) {
  auto preset = FindPreset(opt.preset);
  if (!preset.ok()) return Fail(preset.status().message());
  SynthOptions so;
  so.config = preset.value();
  if (!opt.arch.empty() && opt.arch != ArchName(so.config.arch) &&
      opt.arch != SynthArchName(so.config)) {
    return Fail("--arch " + opt.arch + " does not match preset '" + opt.preset + "', which is " +
                SynthArchName(so.config) + " (omit --arch or pick another preset)");
  }
  const auto type = DTypeFromName(opt.type);
  if (!type) return Fail("unknown --type '" + opt.type + "' (F32, F16, BF16, Q8_0, Q4_0)");
  if (opt.threads < 0) return Fail("--threads must be >= 0");
  so.type = *type;
  so.seed = opt.seed;
  so.vocab_from = opt.vocab_from;
  so.threads = opt.threads;
  auto r = SynthesizeModel(so, opt.output);
  if (!r.ok()) return Fail(r.status().message());
  static const char* const kCount[] = {"", "K", "M", "B", "T", nullptr};
  static const char* const kBytes[] = {"B", "KB", "MB", "GB", "TB", nullptr};
  std::printf("wrote %s: %s (%s), %s, %s parameters, %s, vocab %d, %.1f s\n", opt.output.c_str(),
              r->config.name.c_str(), SynthArchName(r->config).c_str(),
              std::string(DTypeName(so.type)).c_str(),
              Human(static_cast<double>(r->parameters), kCount).c_str(),
              Human(static_cast<double>(r->bytes), kBytes).c_str(), r->config.vocab_size,
              r->seconds);
  return 0;
}

RegisterCommand reg("synth", "Write a random-weight model of a preset shape as GGUF", [](CLI::App& sub) {
  auto opt = std::make_shared<SynthCmdOptions>();
  std::string presets;
  for (std::string_view n : PresetNames()) presets += (presets.empty() ? "" : ", ") + std::string(n);
  sub.add_option("--arch", opt->arch, "llama or gpt2; must match the preset (optional)");
  sub.add_option("--preset", opt->preset, "model shape: " + presets)->required();
  sub.add_option("--type", opt->type, "2-D weight type: F32, F16, BF16, Q8_0, Q4_0")->required();
  sub.add_option("--seed", opt->seed, "random seed (same seed, same file)");
  sub.add_option("--vocab-from", opt->vocab_from,
                 "copy the tokenizer (all tokenizer.* keys) from this GGUF; sets the vocab size");
  sub.add_option("--threads", opt->threads, "generation threads (0 = all cores)");
  sub.add_option("-o,--output", opt->output, "output GGUF file")->required();
  return [opt]() -> int { return RunSynth(*opt); };
});

}  // namespace
}  // namespace kvc::cli
