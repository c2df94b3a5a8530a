// The live KV cache page: GET / serves one self-contained HTML page (no external resources) that
// polls GET /v1/cache and draws the block pool as a map, the sequences with their blocks, and the
// prefix hit rate over time. See docs/SERVING.md for the JSON.
#pragma once

#include <string>
#include <string_view>

#include "engine/engine.h"

namespace kvc {

// The page (HTML, CSS and JavaScript in one document).
std::string_view CachePageHtml();

// The body of GET /v1/cache. `blocks` is one character per physical block: '.' free, 'u' used by
// one sequence, 's' shared, 'c' cached (registered, unreferenced); 'U' and 'S' are used and
// shared blocks that are also registered in the prefix cache.
std::string CacheJson(const CacheSnapshot& s, const std::string& model_id);

}  // namespace kvc
