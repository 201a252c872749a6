#include "ember/executor.hpp"

namespace ember {

Executor::~Executor() = default;

}  // namespace ember
