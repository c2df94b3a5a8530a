#include "engine/sequence.h"

namespace kvc {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kLength: return "length";
    case FinishReason::kStop: return "stop";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "none";
}

void RequestStream::Push(TokenEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(e));
  }
  cv_.notify_one();
}

TokenEvent RequestStream::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !events_.empty(); });
  TokenEvent e = std::move(events_.front());
  events_.pop_front();
  return e;
}

bool RequestStream::NextFor(std::chrono::milliseconds timeout, TokenEvent* out) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !events_.empty(); })) return false;
  *out = std::move(events_.front());
  events_.pop_front();
  return true;
}

Sequence::Sequence(int64_t id, std::vector<int32_t> prompt, const RequestOptions& options,
                   std::shared_ptr<RequestStream> stream)
    : id(id), tokens(std::move(prompt)), prompt_len(static_cast<int32_t>(tokens.size())),
      options(options), sampler(options.sampling), stream(std::move(stream)),
      arrival(Clock::now()) {
  stats.prompt_tokens = prompt_len;
}

}  // namespace kvc
