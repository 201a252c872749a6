// TorchExecutor in a build without LibTorch (EMBER_WITH_TORCH=OFF): every load answers
// Unimplemented, so code that embeds ember for validation alone still links.
#include "ember/executor.hpp"
#include "ember/threads.hpp"

namespace ember {

namespace detail {
class TorchExecutorImpl {};
class AotiExecutorImpl {};
}  // namespace detail

namespace {
const ModelInfo& empty_info() {
  static const ModelInfo empty;
  return empty;
}
Status no_torch() { return unimplemented("this build of ember has no LibTorch (EMBER_WITH_TORCH=OFF)"); }
}  // namespace

TorchExecutor::TorchExecutor(std::unique_ptr<detail::TorchExecutorImpl> impl) : impl_(std::move(impl)) {}
TorchExecutor::~TorchExecutor() = default;

Result<std::unique_ptr<TorchExecutor>> TorchExecutor::load(const std::filesystem::path&, const ExecutorOptions&) {
  return no_torch();
}
Result<std::unique_ptr<TorchExecutor>> TorchExecutor::load_from_memory(std::span<const std::byte>,
                                                                      const ExecutorOptions&) {
  return no_torch();
}
// No TorchExecutor can exist in this build, so these are never reached.
Result<NamedTensors> TorchExecutor::run(std::span<const Tensor>) const { return no_torch(); }
Result<NamedTensors> TorchExecutor::run_named(const NamedTensors&) const { return no_torch(); }
std::string TorchExecutor::name() const { return "torchscript:unavailable"; }
const ModelInfo& TorchExecutor::info() const noexcept {
  static const ModelInfo empty;
  return empty;
}
std::vector<std::string> TorchExecutor::input_names() const { return {}; }
const std::vector<InputSpec>& TorchExecutor::input_specs() const noexcept {
  static const std::vector<InputSpec> none;
  return none;
}

Result<std::string> TorchExecutor::native_json() const { return no_torch(); }

AotiExecutor::AotiExecutor(std::unique_ptr<detail::AotiExecutorImpl> impl) : impl_(std::move(impl)) {}
AotiExecutor::~AotiExecutor() = default;
Result<std::unique_ptr<AotiExecutor>> AotiExecutor::load(const std::filesystem::path&, const ExecutorOptions&) {
  return no_torch();
}
// No AotiExecutor can exist in this build, so these are never reached.
Result<NamedTensors> AotiExecutor::run(std::span<const Tensor>) const { return no_torch(); }
const ModelInfo& AotiExecutor::info() const noexcept { return empty_info(); }
const std::vector<InputSpec>& AotiExecutor::input_specs() const noexcept {
  static const std::vector<InputSpec> none;
  return none;
}
std::map<std::string, std::string> AotiExecutor::metadata() const { return {}; }

bool cuda_available() noexcept { return false; }
int cuda_device_count() noexcept { return 0; }

Status set_torch_threads(int /*n*/) { return no_torch(); }

}  // namespace ember
