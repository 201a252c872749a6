// TorchExecutor: TorchScript modules on LibTorch (or, when they lower, on the native path).
#include <torch/cuda.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caffe2/serialize/read_adapter_interface.h>

#include "ember/executor.hpp"
#include "ember/native.hpp"
#include "ember/threads.hpp"
#include "executor/torch/common.hpp"
#include "executor/torch/lower.hpp"
#include "ember/torch.hpp"

namespace ember {
namespace detail {
namespace {

// Reads the archive straight out of caller memory.
class SpanReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit SpanReadAdapter(std::span<const std::byte> bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    const size_t count = std::min<size_t>(n, bytes_.size() - static_cast<size_t>(pos));
    std::memcpy(buf, bytes_.data() + pos, count);
    return count;
  }

 private:
  std::span<const std::byte> bytes_;
};

Status load_error(const c10::Error& e, const std::string& what) {
  std::string msg = message_of(e);
  // A sound zip without TorchScript's records (a state_dict, any other zip) is the
  // wrong kind of file; other failures of the zip reader mean damaged bytes.
  if (msg.find("failed locating file") != std::string::npos) {
    return invalid_argument(what + " is not a loadable TorchScript module: " + msg);
  }
  if (msg.find("PytorchStreamReader") != std::string::npos || msg.find("CRC") != std::string::npos) {
    return data_loss(what + " is corrupt: " + msg);
  }
  return invalid_argument(what + " is not a loadable TorchScript module: " + msg);
}

bool is_tensor_type(const c10::TypePtr& type) {
  if (type->kind() == c10::TypeKind::TensorType) return true;
  if (auto opt = type->cast<c10::OptionalType>()) return opt->getElementType()->kind() == c10::TypeKind::TensorType;
  return false;
}

MethodInfo describe_method(const torch::jit::Method& method) {
  MethodInfo m;
  m.name = method.name();
  const c10::FunctionSchema& schema = method.function().getSchema();
  for (const auto& arg : schema.arguments()) {
    if (arg.name() == "self") continue;
    m.arguments.push_back({arg.name(), arg.type()->annotation_str()});
  }
  std::vector<std::string> returns;
  for (const auto& r : schema.returns()) returns.push_back(r.type()->annotation_str());
  if (returns.size() == 1) {
    m.return_type = returns[0];
  } else {
    m.return_type = "(";
    for (std::size_t i = 0; i < returns.size(); ++i) m.return_type += (i ? ", " : "") + returns[i];
    m.return_type += ")";
  }
  m.schema = m.name + "(";
  for (std::size_t i = 0; i < m.arguments.size(); ++i) {
    m.schema += (i ? ", " : "") + m.arguments[i].type + " " + m.arguments[i].name;
  }
  m.schema += ") -> " + m.return_type;
  return m;
}

}  // namespace

class TorchExecutorImpl {
 public:
  torch::jit::Module module;
  std::optional<torch::jit::Method> forward;
  torch::Device device{torch::kCPU};
  std::vector<std::string> arg_names;
  std::size_t required_args = 0;
  std::string non_tensor_arg;  // first forward() argument that is not a Tensor, if any
  std::vector<InputSpec> specs;
  ModelInfo info;
  NonFinitePolicy non_finite = NonFinitePolicy::kPassThrough;
  bool outputs_to_host = true;
  LogSink log;
  // The native network forward() lowered to (null when it did not: `lowering` says why),
  // and its executor when the native path runs it.
  std::shared_ptr<const NetSpec> net;
  Status lowering;
  std::unique_ptr<NativeExecutor> native;

  Status check_inputs(std::span<const Tensor> inputs) const;
  Result<NamedTensors> run(std::span<const Tensor> inputs) const;
  Status flatten(const c10::IValue& value, const std::string& name, std::span<const Tensor> inputs,
                 NamedTensors& out) const;
  std::string arg_list() const {
    std::string s;
    for (std::size_t i = 0; i < arg_names.size(); ++i) s += (i ? ", " : "") + arg_names[i];
    return s;
  }
  std::string input_label(std::size_t i) const {
    return "input " + std::to_string(i) + " ('" + (i < arg_names.size() ? arg_names[i] : "?") + "')";
  }
};

Status TorchExecutorImpl::check_inputs(std::span<const Tensor> inputs) const {
  if (!non_tensor_arg.empty()) {
    return unimplemented("forward() argument '" + non_tensor_arg + "' is not a Tensor; ember passes tensors only");
  }
  if (inputs.size() < required_args || inputs.size() > arg_names.size()) {
    std::string expected = required_args == arg_names.size()
                               ? std::to_string(arg_names.size())
                               : std::to_string(required_args) + " to " + std::to_string(arg_names.size());
    return invalid_argument("forward() takes " + expected + " input(s) (" + arg_list() + "), got " +
                            std::to_string(inputs.size()));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (!t.defined()) return invalid_argument(input_label(i) + " is undefined");
    if (i < specs.size()) {
      const InputSpec& spec = specs[i];
      if (t.dtype() != spec.dtype) {
        return invalid_argument(input_label(i) + ": expected " + std::string(dtype_name(spec.dtype)) + ", got " +
                                std::string(dtype_name(t.dtype())));
      }
      bool shape_ok = t.shape().size() == spec.shape.size();
      for (std::size_t d = 0; shape_ok && d < spec.shape.size(); ++d) {
        shape_ok = spec.shape[d] < 0 || spec.shape[d] == t.shape()[d];
      }
      if (!shape_ok) {
        return invalid_argument(input_label(i) + ": expected shape " + shape_to_string(spec.shape) + ", got " +
                                shape_to_string(t.shape()));
      }
    }
    if (non_finite == NonFinitePolicy::kReject && is_floating(t.dtype()) && t.device().is_cpu()) {
      auto finite = t.all_finite();
      if (!finite.ok()) return finite.status();
      if (!*finite) return invalid_argument(input_label(i) + " contains NaN or Inf");
    }
  }
  return {};
}

// True when `t`'s memory lies inside one of the caller's input buffers: such an
// output must be copied, because the caller may free its inputs after the call.
static bool aliases_input(const torch::Tensor& t, std::span<const Tensor> inputs) {
  const auto* p = static_cast<const std::byte*>(t.data_ptr());
  for (const Tensor& in : inputs) {
    const auto* begin = static_cast<const std::byte*>(in.data());
    if (begin != nullptr && p >= begin && p < begin + in.nbytes()) return true;
  }
  return false;
}

Status TorchExecutorImpl::flatten(const c10::IValue& value, const std::string& name, std::span<const Tensor> inputs,
                                  NamedTensors& out) const {
  auto child = [&name](const std::string& key) { return name.empty() ? key : name + "." + key; };
  const std::string label = name.empty() ? "output" : name;
  if (value.isTensor()) {
    torch::Tensor t = value.toTensor();
    if (!t.defined()) return internal_error("model output '" + label + "' is an undefined tensor");
    if (outputs_to_host && !t.is_cpu()) t = t.to(torch::kCPU);
    if (!t.is_contiguous()) t = t.contiguous();
    if (aliases_input(t, inputs)) t = t.clone();
    auto converted = from_torch(t);
    if (!converted.ok()) return converted.status().with_context("model output '" + label + "'");
    return out.add(label, std::move(converted).value());
  }
  if (value.isTuple()) {
    const auto& elements = value.toTupleRef().elements();
    for (std::size_t i = 0; i < elements.size(); ++i) {
      EMBER_RETURN_IF_ERROR(flatten(elements[i], child(std::to_string(i)), inputs, out));
    }
    return {};
  }
  if (value.isList()) {
    const auto list = value.toListRef();
    for (std::size_t i = 0; i < list.size(); ++i) {
      EMBER_RETURN_IF_ERROR(flatten(list[i], child(std::to_string(i)), inputs, out));
    }
    return {};
  }
  if (value.isGenericDict()) {
    for (const auto& item : value.toGenericDict()) {
      const c10::IValue& key = item.key();
      std::string key_name;
      if (key.isString()) key_name = key.toStringRef();
      else if (key.isInt()) key_name = std::to_string(key.toInt());
      else return internal_error("model output '" + label + "' is a dict with keys of type " + key.tagKind());
      EMBER_RETURN_IF_ERROR(flatten(item.value(), child(key_name), inputs, out));
    }
    return {};
  }
  Result<Tensor> scalar = Tensor();
  if (value.isDouble()) {
    const double v = value.toDouble();
    scalar = Tensor::from_values(std::span<const double>(&v, 1), {});
  } else if (value.isInt()) {
    const std::int64_t v = value.toInt();
    scalar = Tensor::from_values(std::span<const std::int64_t>(&v, 1), {});
  } else if (value.isBool()) {
    const bool v = value.toBool();
    scalar = Tensor::from_values(std::span<const bool>(&v, 1), {});
  } else {
    return internal_error("model output '" + label + "' has unsupported type " + value.tagKind());
  }
  if (!scalar.ok()) return scalar.status();
  return out.add(label, std::move(scalar).value());
}

Result<NamedTensors> TorchExecutorImpl::run(std::span<const Tensor> inputs) const {
  EMBER_RETURN_IF_ERROR(check_inputs(inputs));
  if (native != nullptr && inputs.size() == 1 && inputs[0].dtype() == DType::kFloat32 && inputs[0].device().is_cpu() &&
      inputs[0].shape().size() == 2 && inputs[0].shape()[1] == net->inputs) {
    return native->run(inputs);  // anything else (another dtype or shape) goes to LibTorch as before
  }
  WarningScope warnings(&log);
  try {
    c10::InferenceMode inference;
    std::vector<c10::IValue> stack;
    stack.reserve(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& in = inputs[i];
      const Device d = in.device();
      const torch::Device where = d.is_cuda() ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d.index))
                                              : torch::Device(torch::kCPU);
      // Borrowed without a copy: the caller's tensor outlives this call, and outputs
      // that alias it are copied in flatten().
      torch::Tensor t = torch::from_blob(in.data(), in.shape(),
                                         torch::TensorOptions().dtype(to_torch_dtype(in.dtype())).device(where));
      if (t.device() != device) t = t.to(device);
      if (non_finite == NonFinitePolicy::kReject && t.is_floating_point() && !in.device().is_cpu() &&
          !torch::isfinite(t).all().item<bool>()) {
        return invalid_argument(input_label(i) + " contains NaN or Inf");
      }
      stack.emplace_back(std::move(t));
    }
    c10::IValue result = (*forward)(std::move(stack));
    NamedTensors out;
    EMBER_RETURN_IF_ERROR(flatten(result, "", inputs, out));
    return out;
  } catch (...) {
    return status_from_current_exception("forward() failed");
  }
}

namespace {

Result<torch::Device> resolve_device(const std::string& text) {
  if (text == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  auto parsed = Device::parse(text);
  if (!parsed.ok()) return parsed.status().code() == StatusCode::kInvalidArgument
                                 ? invalid_argument("bad device '" + text + "' (expected auto, cpu, cuda or cuda:N)")
                                 : parsed.status();
  if (parsed->is_cpu()) return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available()) {
    return failed_precondition("device " + text + " requested, but CUDA is not available (" +
                               (torch::cuda::device_count() == 0 ? "no CUDA device or no CUDA support in this LibTorch"
                                                                 : "CUDA runtime unusable") +
                               ")");
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (parsed->index >= count) {
    return failed_precondition("device " + text + " requested, but only " + std::to_string(count) +
                               " CUDA device(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(parsed->index));
}

Status check_options(const ExecutorOptions& options) {
  if (options.warmup_runs < 0) return invalid_argument("warmup_runs must be >= 0");
  if (options.warmup_runs > 0 && options.example_inputs.empty()) {
    return invalid_argument("warmup_runs > 0 needs example_inputs");
  }
  for (std::size_t i = 0; i < options.example_inputs.size(); ++i) {
    if (!options.example_inputs[i].defined()) {
      return invalid_argument("example input " + std::to_string(i) + " is undefined");
    }
  }
  return {};
}

// Everything after the bytes are known to look like an archive: load, inspect,
// optimise, warm up. `load_module` performs the actual torch::jit::load.
template <typename LoadFn>
Result<std::unique_ptr<TorchExecutorImpl>> build(LoadFn&& load_module, std::uint64_t size, const std::string& what,
                                                 const ExecutorOptions& options) {
  auto device = resolve_device(options.device);
  if (!device.ok()) return device.status();

  auto impl = std::make_unique<TorchExecutorImpl>();
  impl->device = *device;
  impl->non_finite = options.non_finite_inputs;
  impl->outputs_to_host = options.outputs_to_host;
  impl->log = options.log;
  WarningScope warnings(&impl->log);

  try {
    impl->module = load_module(*device);
  } catch (const c10::Error& e) {
    return load_error(e, what);
  } catch (...) {
    return status_from_current_exception("loading " + what);
  }

  try {
    torch::jit::Module& m = impl->module;
    m.eval();
    auto forward = m.find_method("forward");
    if (!forward) return invalid_argument(what + " has no forward() method");

    ModelInfo& info = impl->info;
    info.size_bytes = size;
    info.device = impl->device.str();
    info.methods.push_back(describe_method(*forward));
    std::vector<MethodInfo> others;
    for (const auto& method : m.get_methods()) {
      if (method.name() != "forward") others.push_back(describe_method(method));
    }
    std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    info.methods.insert(info.methods.end(), others.begin(), others.end());
    for (const auto& p : m.parameters(/*recurse=*/true)) {
      info.parameter_count += p.numel();
      info.parameter_bytes += static_cast<std::int64_t>(p.nbytes());
    }

    // The native path: tried on every small module (native_json() serves it even when
    // off). Lowering freezes a copy: not worth its time and memory for a large model.
    constexpr std::int64_t kNativeMaxParameters = 16'000'000;
    if (info.parameter_count > kNativeMaxParameters) {
      impl->lowering = failed_precondition("the native path is for small networks (this one has " +
                                           std::to_string(info.parameter_count) + " parameters)");
    } else if (auto lowered = lower_module(m); lowered.ok()) {
      impl->net = std::make_shared<const NetSpec>(std::move(lowered).value());
    } else {
      impl->lowering = lowered.status();
    }
    if (options.native != NativePath::kOff && impl->net != nullptr && impl->device.is_cpu()) {
      auto native = NativeExecutor::from_spec(impl->net);
      if (!native.ok()) return native.status().with_context(what);
      impl->native = std::move(native).value();
      info.engine = "native";
      info.engine_reason = impl->net->describe();
    } else {
      info.engine_reason = options.native == NativePath::kOff ? "the native path is off"
                           : impl->net == nullptr          ? impl->lowering.message()
                                                           : "the native path runs on the CPU only";
      if (options.native == NativePath::kRequire) {
        return failed_precondition(what + ": the native path was required, but " + info.engine_reason);
      }
    }

    if (options.optimize) {
      try {
        torch::jit::Module frozen = torch::jit::freeze(m);
        m = torch::jit::optimize_for_inference(frozen);
        info.optimized = true;
      } catch (const c10::Error& e) {
        impl->log.log(LogLevel::kWarning, what + ": cannot freeze and optimize, running unfrozen: " + message_of(e));
      }
    }
    impl->forward = m.get_method("forward");
  } catch (...) {
    return status_from_current_exception("inspecting " + what);
  }

  const c10::FunctionSchema& schema = impl->forward->function().getSchema();
  for (const auto& arg : schema.arguments()) {
    if (arg.name() == "self") continue;
    impl->arg_names.push_back(arg.name());
    if (!arg.default_value()) impl->required_args = impl->arg_names.size();
    if (impl->non_tensor_arg.empty() && !is_tensor_type(arg.type())) impl->non_tensor_arg = arg.name();
  }

  if (!options.input_specs.empty()) {
    if (options.input_specs.size() > impl->arg_names.size()) {
      return invalid_argument(std::to_string(options.input_specs.size()) + " input specs given, but forward() takes " +
                              std::to_string(impl->arg_names.size()) + " input(s)");
    }
    impl->specs = options.input_specs;
  }
  if (!options.example_inputs.empty()) {
    EMBER_RETURN_IF_ERROR(impl->check_inputs(options.example_inputs).with_context("example inputs"));
    if (impl->specs.empty()) {
      for (const Tensor& t : options.example_inputs) {
        InputSpec spec{t.dtype(), t.shape()};
        if (!spec.shape.empty()) spec.shape[0] = -1;  // the batch size may vary
        impl->specs.push_back(std::move(spec));
      }
    }
  }

  for (int i = 0; i < options.warmup_runs; ++i) {
    auto warm = impl->run(options.example_inputs);
    if (!warm.ok()) return warm.status().with_context("warm-up run " + std::to_string(i + 1));
  }
  impl->log.log(LogLevel::kInfo, "loaded " + what + " on " + impl->info.device +
                                     (impl->info.optimized ? " (frozen, optimized)" : " (not frozen)") + "; runs on " +
                                     (impl->native != nullptr ? "ember's native kernels: " : "LibTorch: ") +
                                     impl->info.engine_reason);
  return impl;
}

}  // namespace
}  // namespace detail

TorchExecutor::TorchExecutor(std::unique_ptr<detail::TorchExecutorImpl> impl) : impl_(std::move(impl)) {}
TorchExecutor::~TorchExecutor() = default;

Result<std::unique_ptr<TorchExecutor>> TorchExecutor::load(const std::filesystem::path& path,
                                                           const ExecutorOptions& options) {
  EMBER_RETURN_IF_ERROR(detail::check_options(options));
  const std::string what = "'" + path.string() + "'";
  auto size = detail::check_archive_file(path, what, "model file", "TorchScript archive");
  if (!size.ok()) return size.status();

  auto impl = detail::build([&](torch::Device device) { return torch::jit::load(path.string(), device); }, *size,
                            what, options);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<TorchExecutor>(new TorchExecutor(std::move(impl).value()));
}

Result<std::unique_ptr<TorchExecutor>> TorchExecutor::load_from_memory(std::span<const std::byte> archive,
                                                                      const ExecutorOptions& options) {
  EMBER_RETURN_IF_ERROR(detail::check_options(options));
  const std::string what = "in-memory archive";
  EMBER_RETURN_IF_ERROR(detail::check_archive(archive, what, "TorchScript archive"));
  auto impl = detail::build(
      [&](torch::Device device) {
        return torch::jit::load(std::make_shared<detail::SpanReadAdapter>(archive), device);
      },
      archive.size(), what, options);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<TorchExecutor>(new TorchExecutor(std::move(impl).value()));
}

Result<NamedTensors> TorchExecutor::run(std::span<const Tensor> inputs) const { return impl_->run(inputs); }

Result<NamedTensors> TorchExecutor::run_named(const NamedTensors& inputs) const {
  std::vector<Tensor> ordered;
  ordered.reserve(impl_->arg_names.size());
  for (const auto& entry : inputs) {
    if (std::find(impl_->arg_names.begin(), impl_->arg_names.end(), entry.name) == impl_->arg_names.end()) {
      return invalid_argument("unknown input '" + entry.name + "' (forward() takes " + impl_->arg_list() + ")");
    }
  }
  for (const auto& name : impl_->arg_names) {
    const Tensor* t = inputs.find(name);
    if (t == nullptr) {
      if (ordered.size() >= impl_->required_args) break;
      return invalid_argument("missing input '" + name + "' (forward() takes " + impl_->arg_list() + ")");
    }
    ordered.push_back(*t);
  }
  if (ordered.size() != inputs.size()) {
    return invalid_argument("inputs after a missing optional one are not supported (forward() takes " +
                            impl_->arg_list() + ")");
  }
  return impl_->run(ordered);
}

std::string TorchExecutor::name() const { return "torchscript:" + impl_->info.device; }
const ModelInfo& TorchExecutor::info() const noexcept { return impl_->info; }
std::vector<std::string> TorchExecutor::input_names() const { return impl_->arg_names; }
const std::vector<InputSpec>& TorchExecutor::input_specs() const noexcept { return impl_->specs; }
Result<std::string> TorchExecutor::native_json() const {
  if (impl_->net == nullptr) return failed_precondition("no native network: " + impl_->lowering.message());
  return net_to_json(*impl_->net);
}

bool cuda_available() noexcept {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
}

int cuda_device_count() noexcept {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

Status set_torch_threads(int n) {
  if (n < 1) return invalid_argument("set_torch_threads: the thread count must be at least 1, got " + std::to_string(n));
  try {
    at::set_num_threads(n);
  } catch (...) {
    return detail::status_from_current_exception("set_torch_threads");
  }
  return {};
}

}  // namespace ember
