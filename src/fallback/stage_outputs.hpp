#pragma once

// Reusing a result's tensors: what ember's own stages write their answers into.

#include <cstdint>
#include <vector>

#include "ember/fallback.hpp"

namespace ember::detail {

/// Makes `out` hold, in order, one host tensor per spec with `rows` rows that nobody
/// else holds: the tensors it already has when they fit (no allocation), new ones
/// otherwise.
Status writable_outputs(NamedTensors& out, const std::vector<OutputSpec>& specs, std::int64_t rows);

}  // namespace ember::detail
