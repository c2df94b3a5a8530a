// GET /metrics: the engine's counters in the Prometheus text exposition format.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"

namespace kvc {

struct ServerCounters {
  int64_t requests = 0;  // HTTP requests to the completion endpoints
  int64_t errors = 0;    // of those, answered with an error
};

std::string PrometheusText(const EngineMetrics& m, const ServerCounters& s);

}  // namespace kvc
