#pragma once

// Stages that write their answer into the caller's reused tensors (ember's linear,
// cache and default stages).

#include <cstdint>
#include <vector>

#include "ember/fallback.hpp"

namespace ember::detail {

/// A stage that writes its answer into the caller's tensors (run_into); run() is the
/// same into a fresh result.
class WritingStage : public Stage {
 public:
  [[nodiscard]] Result<NamedTensors> run(const Tensor& features) const final {
    NamedTensors out;
    EMBER_RETURN_IF_ERROR(run_into(features, out));
    return out;
  }
};

/// Makes `out` hold, in order, one host tensor per spec with `rows` rows that nobody
/// else holds: the tensors it already has when they fit (no allocation), new ones
/// otherwise.
Status writable_outputs(NamedTensors& out, const std::vector<OutputSpec>& specs, std::int64_t rows);

}  // namespace ember::detail
