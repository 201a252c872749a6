// AotiExecutor: an AOTInductor package (.pt2) run by LibTorch's package loader. Before the
// loader sees a file, ember checks that it is a whole zip, reads the package's metadata,
// and refuses what would crash: another device, CPU features this CPU lacks, another
// torch. The inputs come from the metadata ember's exporter writes (ember.inputs) or from
// the options, and every call is checked against them, since a package checks little.
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/headeronly/version.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "ember/executor.hpp"
#include "ember/torch.hpp"
#include "executor/torch/common.hpp"

namespace ember {
namespace detail {

class AotiExecutorImpl {
 public:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  std::map<std::string, std::string> metadata;
  std::vector<InputSpec> specs;
  std::int64_t max_rows = -1;  // from ember.max_rows; -1: unchecked
  NonFinitePolicy non_finite = NonFinitePolicy::kPassThrough;
  ModelInfo info;
  LogSink log;
};

namespace {

constexpr std::string_view kTorchVersion = TORCH_VERSION;

// "AVX512 AVX512_VNNI AMX_TILE": every feature the package was compiled for must be here.
Status check_cpu(const std::string& isa, const std::string& what) {
  std::istringstream words(isa);
  for (std::string w; words >> w;) {
    bool have = true;
    if (w == "AVX2") have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    else if (w == "AVX512") have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    else if (w == "AVX512_VNNI") have = __builtin_cpu_supports("avx512vnni");
    else if (w == "AMX_TILE") have = __builtin_cpu_supports("amx-tile");
    else if (w == "AVX512_BF16") have = __builtin_cpu_supports("avx512bf16");
    else if (w == "DEFAULT" || w == "NEON" || w == "SVE") have = w == "DEFAULT";
    else return failed_precondition(what + " was compiled for CPU feature " + w + ", which ember does not know");
    if (!have) return failed_precondition(what + " was compiled for " + isa + ", and this CPU lacks " + w);
  }
  return {};
}

Result<std::vector<InputSpec>> specs_from(const std::string& text, std::int64_t& max_rows, const std::string& what) {
  try {
    const auto doc = nlohmann::json::parse(text);
    std::vector<InputSpec> specs;
    for (const auto& in : doc.at("inputs")) {
      InputSpec spec;
      const std::string dtype = in.at("dtype").get<std::string>();
      auto parsed = parse_dtype(dtype);
      if (!parsed.ok()) return invalid_argument(what + ": ember.inputs: unknown dtype '" + dtype + "'");
      spec.dtype = *parsed;
      spec.shape = in.at("shape").get<std::vector<std::int64_t>>();
      specs.push_back(std::move(spec));
    }
    if (doc.contains("max_rows")) max_rows = doc.at("max_rows").get<std::int64_t>();
    if (specs.empty()) return invalid_argument(what + ": ember.inputs lists no inputs");
    return specs;
  } catch (const std::exception& e) {
    return invalid_argument(what + ": ember.inputs is malformed: " + one_line(e.what()));
  }
}

}  // namespace
}  // namespace detail

AotiExecutor::AotiExecutor(std::unique_ptr<detail::AotiExecutorImpl> impl) : impl_(std::move(impl)) {}
AotiExecutor::~AotiExecutor() = default;

Result<std::unique_ptr<AotiExecutor>> AotiExecutor::load(const std::filesystem::path& path,
                                                         const ExecutorOptions& options) {
  const std::string what = "'" + path.string() + "'";
  if (options.device != "cpu" && options.device != "auto") {
    return failed_precondition(what + ": AOTInductor packages run on the CPU in this ember (device '" +
                               options.device + "' asked for)");
  }
  auto size = detail::check_archive_file(path, what, "package", "AOTInductor package");
  if (!size.ok()) return size.status();

  auto impl = std::make_unique<detail::AotiExecutorImpl>();
  impl->non_finite = options.non_finite_inputs;
  impl->log = options.log;
  detail::WarningScope warnings(&impl->log);
  try {
    for (auto& [k, v] : torch::inductor::AOTIModelPackageLoader::load_metadata_from_package(path.string(), "model")) {
      impl->metadata[k] = v;
    }
  } catch (const c10::Error& e) {
    const std::string msg = detail::message_of(e);
    if (msg.find("CRC") != std::string::npos || msg.find("corrupt") != std::string::npos) {
      return data_loss(what + " is corrupt: " + msg);
    }
    return invalid_argument(what + " is not an AOTInductor package: " + msg);
  } catch (...) {
    return detail::status_from_current_exception("reading " + what).with_context("not an AOTInductor package");
  }
  const auto meta = [&](const std::string& key) {
    auto it = impl->metadata.find(key);
    return it == impl->metadata.end() ? std::string() : it->second;
  };
  if (meta("AOTI_DEVICE_KEY") != "cpu") {
    return failed_precondition(what + " was compiled for device '" + meta("AOTI_DEVICE_KEY") +
                               "'; this ember runs AOTInductor packages on the CPU");
  }
  EMBER_RETURN_IF_ERROR(detail::check_cpu(meta("AOTI_CPU_ISA"), what));
  if (const std::string built = meta("ember.torch"); !built.empty() && built.substr(0, built.find('+')) !=
                                                                           std::string(detail::kTorchVersion)) {
    return failed_precondition(what + " was compiled with torch " + built + "; this ember runs LibTorch " +
                               std::string(detail::kTorchVersion) + ": compile it again with that torch");
  }
  if (!options.input_specs.empty()) {
    impl->specs = options.input_specs;
  } else if (const std::string inputs = meta("ember.inputs"); !inputs.empty()) {
    auto specs = detail::specs_from(inputs, impl->max_rows, what);
    if (!specs.ok()) return specs.status();
    impl->specs = std::move(specs).value();
  } else {
    return invalid_argument(what + " does not say its inputs (no ember.inputs in its metadata): export it with "
                            "ember.export_bundle(format=\"aoti\"), or give ExecutorOptions::input_specs");
  }

  try {
    const auto runners = static_cast<std::size_t>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
    impl->loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path.string(), "model",
                                                                             /*run_single_threaded=*/false, runners);
  } catch (const c10::Error& e) {
    return invalid_argument(what + " cannot be loaded: " + detail::message_of(e));
  } catch (...) {
    return detail::status_from_current_exception("loading " + what);
  }
  ModelInfo& info = impl->info;
  info.size_bytes = *size;
  info.device = "cpu";
  info.engine = "aoti";
  info.engine_reason = "compiled for " + (meta("AOTI_CPU_ISA").empty() ? std::string("a generic CPU") : meta("AOTI_CPU_ISA")) +
                       (meta("ember.torch").empty() ? std::string() : ", torch " + meta("ember.torch"));
  impl->log.log(LogLevel::kInfo, "loaded AOTInductor package " + what + " (" + info.engine_reason + ")");
  return std::unique_ptr<AotiExecutor>(new AotiExecutor(std::move(impl)));
}

Result<NamedTensors> AotiExecutor::run(std::span<const Tensor> inputs) const {
  const auto& specs = impl_->specs;
  if (inputs.size() != specs.size()) {
    return invalid_argument("the package takes " + std::to_string(specs.size()) + " input(s), got " +
                            std::to_string(inputs.size()));
  }
  std::vector<at::Tensor> args;
  args.reserve(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    const std::string label = "input " + std::to_string(i);
    if (!t.defined()) return invalid_argument(label + " is undefined");
    if (!t.device().is_cpu()) return invalid_argument(label + " is not on the CPU");
    if (t.dtype() != specs[i].dtype) {
      return invalid_argument(label + ": expected " + std::string(dtype_name(specs[i].dtype)) + ", got " +
                              std::string(dtype_name(t.dtype())));
    }
    bool shape_ok = t.shape().size() == specs[i].shape.size();
    for (std::size_t d = 0; shape_ok && d < t.shape().size(); ++d) {
      shape_ok = specs[i].shape[d] < 0 || specs[i].shape[d] == t.shape()[d];
    }
    if (!shape_ok) {
      return invalid_argument(label + ": expected shape " + shape_to_string(specs[i].shape) + ", got " +
                              shape_to_string(t.shape()));
    }
    if (impl_->max_rows > 0 && !t.shape().empty() && (t.shape()[0] > impl_->max_rows || t.shape()[0] < 1)) {
      return invalid_argument(label + ": " + std::to_string(t.shape()[0]) + " rows; the package was compiled for 1 to " +
                              std::to_string(impl_->max_rows));
    }
    if (impl_->non_finite == NonFinitePolicy::kReject && is_floating(t.dtype())) {
      auto finite = t.all_finite();
      if (!finite.ok()) return finite.status();
      if (!*finite) return invalid_argument(label + " contains NaN or Inf");
    }
    auto converted = to_torch(t);
    if (!converted.ok()) return converted.status();
    args.push_back(std::move(converted).value());
  }
  detail::WarningScope warnings(&impl_->log);
  try {
    c10::InferenceMode inference;
    std::vector<at::Tensor> outs = impl_->loader->run(args);
    NamedTensors result;
    for (std::size_t i = 0; i < outs.size(); ++i) {
      // The package's outputs live in its own buffers: copy them out (contiguous).
      auto out = from_torch(outs[i].contiguous().clone());
      if (!out.ok()) return out.status().with_context("output " + std::to_string(i));
      EMBER_RETURN_IF_ERROR(result.add(outs.size() == 1 ? "output" : std::to_string(i), std::move(out).value()));
    }
    return result;
  } catch (...) {
    return detail::status_from_current_exception("the AOTInductor package failed");
  }
}

const ModelInfo& AotiExecutor::info() const noexcept { return impl_->info; }
const std::vector<InputSpec>& AotiExecutor::input_specs() const noexcept { return impl_->specs; }
std::map<std::string, std::string> AotiExecutor::metadata() const { return impl_->metadata; }

}  // namespace ember
