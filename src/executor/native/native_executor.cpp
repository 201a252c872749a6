// NativeExecutor: a NetSpec behind the Executor interface; scratch memory per thread.
#include "ember/native.hpp"

#include <vector>

#include "core/files.hpp"
#include "executor/native/net.hpp"

namespace ember {

NativeExecutor::NativeExecutor(std::shared_ptr<const detail::NetSpec> spec) : spec_(std::move(spec)) {}
NativeExecutor::~NativeExecutor() = default;

Result<std::unique_ptr<NativeExecutor>> NativeExecutor::from_spec(std::shared_ptr<const detail::NetSpec> spec) {
  if (spec == nullptr) return invalid_argument("no network");
  EMBER_RETURN_IF_ERROR(spec->check());
  return std::unique_ptr<NativeExecutor>(new NativeExecutor(std::move(spec)));
}

Result<std::unique_ptr<NativeExecutor>> NativeExecutor::parse(std::string_view json) {
  auto spec = detail::parse_net(json);
  if (!spec.ok()) return spec.status();
  return from_spec(std::make_shared<const detail::NetSpec>(std::move(spec).value()));
}

Result<std::unique_ptr<NativeExecutor>> NativeExecutor::load(const std::filesystem::path& path) {
  auto text = detail::read_text_file(path, "network file", std::size_t{1} << 30);
  if (!text.ok()) return text.status();
  auto net = parse(*text);
  if (!net.ok()) return net.status().with_context("'" + path.string() + "'");
  return net;
}

Result<NamedTensors> NativeExecutor::run(std::span<const Tensor> inputs) const {
  const detail::NetSpec& spec = *spec_;
  if (inputs.size() != 1) {
    return invalid_argument("the native network takes 1 input, got " + std::to_string(inputs.size()));
  }
  const Tensor& x = inputs[0];
  if (!x.defined() || x.dtype() != DType::kFloat32 || !x.device().is_cpu() || x.shape().size() != 2 ||
      x.shape()[1] != spec.inputs) {
    return invalid_argument("the native network takes a float32 CPU tensor [rows, " + std::to_string(spec.inputs) +
                            "], got " + (x.defined() ? std::string(dtype_name(x.dtype())) + " " + shape_to_string(x.shape())
                                                     : std::string("an undefined tensor")));
  }
  const std::int64_t rows = x.shape()[0];
  std::vector<std::int64_t> shape = spec.squeeze ? std::vector<std::int64_t>{rows}
                                                 : std::vector<std::int64_t>{rows, spec.outputs()};
  auto y = Tensor::zeros(DType::kFloat32, std::move(shape));
  if (!y.ok()) return y.status();
  if (rows > 0) {
    // Scratch per thread, grown to the largest batch seen and kept.
    thread_local std::vector<float> scratch;
    thread_local std::vector<float*> slots;
    const auto block = static_cast<std::size_t>(rows * spec.widest());
    slots.resize(static_cast<std::size_t>(spec.slots()));
    const auto need = block * (2 + slots.size());
    if (scratch.size() < need) scratch.resize(need);
    for (std::size_t s = 0; s < slots.size(); ++s) slots[s] = scratch.data() + block * (2 + s);
    auto in = x.values<const float>();
    auto out = y->values<float>();
    detail::run_net(spec, in.data(), rows, out.data(), scratch.data(), scratch.data() + block, slots.data());
  }
  NamedTensors result;
  EMBER_RETURN_IF_ERROR(result.add("output", std::move(*y)));
  return result;
}

std::int64_t NativeExecutor::inputs() const noexcept { return spec_->inputs; }
std::int64_t NativeExecutor::outputs() const noexcept { return spec_->outputs(); }
std::int64_t NativeExecutor::parameter_count() const noexcept { return spec_->parameters(); }
std::string NativeExecutor::describe() const { return spec_->describe(); }
std::string NativeExecutor::to_json() const { return detail::net_to_json(*spec_); }

}  // namespace ember
