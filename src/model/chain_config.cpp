// chain.json: the fallback chain of a model directory, every key checked.
#include <cmath>
#include <initializer_list>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "ember/model.hpp"
#include "ember/native.hpp"
#include "model/model_internal.hpp"

namespace ember {
namespace detail {
namespace {

using Json = nlohmann::json;
constexpr int kChainFormatVersion = 1;

// One JSON object of the configuration, read key by key with its place for messages.
class Fields {
 public:
  Fields(const Json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[nodiscard]] const std::string& where() const { return where_; }
  [[nodiscard]] bool has(const char* key) const { return j_.contains(key); }
  [[nodiscard]] const Json& at(const char* key) const { return j_.at(key); }

  Status only(std::initializer_list<const char*> allowed) const {
    for (const auto& [key, value] : j_.items()) {
      bool known = false;
      for (const char* a : allowed) known = known || key == a;
      if (!known) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        return invalid_argument(where_ + ": unknown key '" + key + "' (known: " + list + ")");
      }
    }
    return {};
  }

  // A number in [lo, hi], or in (lo, hi] when `above` is set.
  Result<double> number(const char* key, double fallback, double lo, double hi, bool above = false) const {
    if (!j_.contains(key)) return fallback;
    const Json& v = j_.at(key);
    const bool low_ok = v.is_number() && (above ? v.get<double>() > lo : v.get<double>() >= lo);
    if (!low_ok || !std::isfinite(v.get<double>()) || v.get<double>() > hi) {
      return invalid_argument(where_ + ": '" + key + "' must be a number in " + (above ? "(" : "[") + fmt(lo) + ", " +
                              fmt(hi) + "]");
    }
    return v.get<double>();
  }
  Result<std::uint64_t> count(const char* key, std::uint64_t fallback, std::uint64_t lo, std::uint64_t hi) const {
    if (!j_.contains(key)) return fallback;
    const Json& v = j_.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() < static_cast<std::int64_t>(lo) ||
        v.get<std::int64_t>() > static_cast<std::int64_t>(hi)) {
      return invalid_argument(where_ + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "]");
    }
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  // Milliseconds (a day at most), positive or at least zero.
  Result<std::chrono::nanoseconds> millis(const char* key, std::chrono::nanoseconds fallback, bool positive) const {
    auto ms = number(key, -1, 0, 86'400'000.0, positive);
    if (!ms.ok()) return ms.status();
    if (*ms < 0) return fallback;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(*ms * 1e6));
  }
  Result<std::string> text(const char* key, std::string fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_.at(key).is_string() || j_.at(key).get<std::string>().empty()) {
      return invalid_argument(where_ + ": '" + key + "' must be a non-empty string");
    }
    return j_.at(key).get<std::string>();
  }
  Result<bool> flag(const char* key, bool fallback) const {
    if (!j_.contains(key)) return fallback;
    if (!j_.at(key).is_boolean()) return invalid_argument(where_ + ": '" + key + "' must be true or false");
    return j_.at(key).get<bool>();
  }

 private:
  static std::string fmt(double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  const Json& j_;
  std::string where_;
};

#define EMBER_ASSIGN(lhs, expr)               \
  do {                                        \
    auto ember_value_ = (expr);               \
    if (!ember_value_.ok()) return ember_value_.status(); \
    lhs = *ember_value_;                      \
  } while (false)

Result<CircuitBreakerConfig> parse_breaker(const Json& j, const std::string& where) {
  if (!j.is_object()) return invalid_argument(where + ": 'breaker' must be an object or false");
  const Fields f(j, where + " breaker");
  EMBER_RETURN_IF_ERROR(f.only({"failure_rate_threshold", "slow_call_rate_threshold", "slow_call_duration_ms",
                                "sliding_window_type", "sliding_window_size", "minimum_number_of_calls",
                                "wait_duration_in_open_state_ms", "permitted_calls_in_half_open_state",
                                "max_wait_duration_in_half_open_state_ms", "ignored_codes"}));
  CircuitBreakerConfig c;
  EMBER_ASSIGN(c.failure_rate_threshold, f.number("failure_rate_threshold", c.failure_rate_threshold, 0, 100, true));
  EMBER_ASSIGN(c.slow_call_rate_threshold, f.number("slow_call_rate_threshold", c.slow_call_rate_threshold, 0, 100, true));
  EMBER_ASSIGN(c.slow_call_duration, f.millis("slow_call_duration_ms", c.slow_call_duration, true));
  std::string window;
  EMBER_ASSIGN(window, f.text("sliding_window_type", "count_based"));
  if (window == "time_based") {
    c.sliding_window_type = SlidingWindowType::kTimeBased;
  } else if (window != "count_based") {
    return invalid_argument(f.where() + ": 'sliding_window_type' must be \"count_based\" or \"time_based\"");
  }
  EMBER_ASSIGN(c.sliding_window_size, f.count("sliding_window_size", c.sliding_window_size, 1, 1'000'000));
  EMBER_ASSIGN(c.minimum_number_of_calls, f.count("minimum_number_of_calls", c.minimum_number_of_calls, 1, 1'000'000));
  EMBER_ASSIGN(c.wait_duration_in_open_state, f.millis("wait_duration_in_open_state_ms", c.wait_duration_in_open_state, true));
  EMBER_ASSIGN(c.permitted_calls_in_half_open_state,
               f.count("permitted_calls_in_half_open_state", c.permitted_calls_in_half_open_state, 1, 1'000'000));
  EMBER_ASSIGN(c.max_wait_duration_in_half_open_state,
               f.millis("max_wait_duration_in_half_open_state_ms", c.max_wait_duration_in_half_open_state, false));
  if (f.has("ignored_codes")) {
    const Json& codes = f.at("ignored_codes");
    if (!codes.is_array()) return invalid_argument(f.where() + ": 'ignored_codes' must be an array of code names");
    for (const Json& name : codes) {
      bool known = false;
      for (int code = 1; code <= static_cast<int>(StatusCode::kDataLoss); ++code) {
        const auto sc = static_cast<StatusCode>(code);
        if (name.is_string() && name.get<std::string>() == status_code_name(sc)) {
          c.ignored_codes.push_back(sc);
          known = true;
        }
      }
      if (!known) return invalid_argument(f.where() + ": 'ignored_codes' holds " + name.dump() + ", not a status code name");
    }
  }
  EMBER_RETURN_IF_ERROR(c.validate().with_context(f.where()));
  return c;
}

Result<std::vector<DefaultOutput>> parse_default_outputs(const Json& j, const std::string& where) {
  if (!j.is_object() || j.empty()) {
    return invalid_argument(where + ": 'outputs' must be an object of output name -> number or array of numbers");
  }
  std::vector<DefaultOutput> outputs;
  for (const auto& [name, value] : j.items()) {
    DefaultOutput o{name, {}};
    if (value.is_number()) {
      o.values.push_back(value.get<float>());  // default answers are float32, as the model's
    } else if (value.is_array()) {
      for (const Json& v : value) {
        if (!v.is_number()) return invalid_argument(where + ": output '" + name + "' must hold numbers");
        o.values.push_back(v.get<float>());
      }
    } else {
      return invalid_argument(where + ": output '" + name + "' must be a number or an array of numbers");
    }
    outputs.push_back(std::move(o));
  }
  return outputs;
}

}  // namespace

Result<std::shared_ptr<Stage>> torchscript_stage(const std::filesystem::path& path, const std::string& device,
                                                 std::size_t input_width, const ModelOptions& options, DType dtype,
                                                 NativePath native) {
  ExecutorOptions eo;
  eo.device = device;
  eo.native = native;
  eo.input_specs = {InputSpec{dtype, {-1, static_cast<std::int64_t>(input_width)}}};
  eo.log = options.log;
  auto executor = TorchExecutor::load(path, eo);
  if (executor.status().code() == StatusCode::kUnimplemented) {
    return failed_precondition(
        "the model needs TorchScript, and this ember was built without LibTorch (EMBER_WITH_TORCH=OFF): build "
        "with it, or give the model a chain without a torchscript stage (linear, cache, default)");
  }
  if (!executor.ok()) return executor.status();
  return make_executor_stage(std::shared_ptr<const Executor>(std::move(executor).value()), dtype);
}

namespace {

Result<std::shared_ptr<Stage>> aoti_stage(const std::filesystem::path& path, std::size_t input_width,
                                          const ModelOptions& options) {
  ExecutorOptions eo;
  eo.device = "cpu";
  eo.log = options.log;
  auto executor = AotiExecutor::load(path, eo);
  if (executor.status().code() == StatusCode::kUnimplemented) {
    return failed_precondition("an AOTInductor package needs LibTorch, and this ember was built without it "
                               "(EMBER_WITH_TORCH=OFF)");
  }
  if (!executor.ok()) return executor.status();
  const auto& specs = (*executor)->input_specs();
  if (specs.size() != 1 || specs[0].shape.size() != 2 ||
      (specs[0].shape[1] >= 0 && specs[0].shape[1] != static_cast<std::int64_t>(input_width))) {
    return invalid_argument("the package does not take one [rows, " + std::to_string(input_width) + "] input");
  }
  const DType dtype = specs[0].dtype;
  return make_executor_stage(std::shared_ptr<const Executor>(std::move(executor).value()), dtype);
}

}  // namespace

Result<ChainOptions> default_chain(const std::filesystem::path& model_dir, std::size_t input_width,
                                   const ModelOptions& options) {
  std::string device = options.device;
  if (device == "auto") device = cuda_available() ? "cuda" : "cpu";
  ChainOptions chain;
  chain.input_width = input_width;
  auto primary = torchscript_stage(model_dir / "model.pt", device, input_width, options, DType::kFloat32, options.native);
  if (!primary.ok()) return primary.status().with_context("stage 'primary'");
  chain.stages.push_back({"primary", *primary});
  if (device != "cpu") {
    auto cpu = torchscript_stage(model_dir / "model.pt", "cpu", input_width, options, DType::kFloat32, options.native);
    if (!cpu.ok()) return cpu.status().with_context("stage 'cpu'");
    chain.stages.push_back({"cpu", *cpu});
  }
  return chain;
}

Result<ChainOptions> parse_chain(std::string_view text, const std::filesystem::path& model_dir,
                                 std::size_t input_width, const ModelOptions& options) try {
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const std::exception&) {
    return invalid_argument("not valid JSON");
  }
  if (!doc.is_object() || doc.value("format", "") != "ember-chain") {
    return invalid_argument("not an ember chain (\"format\" must be \"ember-chain\")");
  }
  if (!doc.contains("version") || !doc.at("version").is_number_integer() ||
      doc.at("version").get<int>() != kChainFormatVersion) {
    return invalid_argument("unsupported format version (this ember reads version " +
                            std::to_string(kChainFormatVersion) + ")");
  }
  const Fields top(doc, "chain");
  EMBER_RETURN_IF_ERROR(top.only({"format", "version", "budget_ms", "max_abandoned", "confidence", "stages"}));
  ChainOptions chain;
  chain.input_width = input_width;
  EMBER_ASSIGN(chain.budget, top.millis("budget_ms", chain.budget, false));
  EMBER_ASSIGN(chain.max_abandoned, top.count("max_abandoned", chain.max_abandoned, 0, 10'000));
  if (top.has("confidence")) {
    const Json& c = doc.at("confidence");
    if (!c.is_object()) return invalid_argument("chain: 'confidence' must be an object");
    const Fields f(c, "chain confidence");
    EMBER_RETURN_IF_ERROR(f.only({"output", "threshold"}));
    ConfidencePolicy policy;
    EMBER_ASSIGN(policy.output, f.text("output", policy.output));
    if (!f.has("threshold")) return invalid_argument("chain confidence: 'threshold' is required");
    EMBER_ASSIGN(policy.threshold, f.number("threshold", 0, 0, 1, true));
    chain.confidence = policy;
  }
  if (!doc.contains("stages") || !doc.at("stages").is_array() || doc.at("stages").empty()) {
    return invalid_argument("chain: 'stages' must be a non-empty array");
  }
  const Json& stages = doc.at("stages");
  if (stages.size() > 64) return invalid_argument("chain: at most 64 stages");
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Json& s = stages[i];
    std::string where = "chain stage " + std::to_string(i);
    if (!s.is_object()) return invalid_argument(where + ": must be an object");
    if (!s.contains("type") || !s.at("type").is_string()) return invalid_argument(where + ": 'type' must be a string");
    const std::string type = s.at("type").get<std::string>();
    ChainStage stage;
    EMBER_ASSIGN(stage.name, Fields(s, where).text("name", type));
    where += " '" + stage.name + "'";
    const Fields f(s, where);
    std::shared_ptr<Stage> built;
    bool skip = false;
    // A stage that loaded, or an optional one that cannot run here (FailedPrecondition: no
    // GPU, no LibTorch, another CPU), left out with a warning; anything else fails.
    const auto take = [&](Result<std::shared_ptr<Stage>> loaded, bool optional) -> Status {
      if (loaded.ok()) {
        built = std::move(loaded).value();
      } else if (optional && loaded.status().code() == StatusCode::kFailedPrecondition) {
        options.log.log(LogLevel::kWarning, where + " left out: " + loaded.status().to_string());
        skip = true;
      } else {
        return loaded.status().with_context(where);
      }
      return {};
    };
    if (type == "torchscript") {
      EMBER_RETURN_IF_ERROR(f.only(
          {"type", "name", "path", "device", "input_dtype", "optional", "on_out_of_memory", "native", "breaker"}));
      std::string path, device, oom, dtype_text, native_text;
      bool optional = false;
      EMBER_ASSIGN(path, f.text("path", "model.pt"));
      EMBER_ASSIGN(dtype_text, f.text("input_dtype", "float32"));
      if (dtype_text != "float32" && dtype_text != "float64") {
        return invalid_argument(where + ": 'input_dtype' must be \"float32\" or \"float64\"");
      }
      const DType dtype = dtype_text == "float64" ? DType::kFloat64 : DType::kFloat32;
      auto file = confined_path(model_dir, path, where + ": 'path'");
      if (!file.ok()) return file.status();
      EMBER_ASSIGN(device, f.text("device", options.device));
      EMBER_ASSIGN(optional, f.flag("optional", false));
      EMBER_ASSIGN(oom, f.text("on_out_of_memory", "next_stage"));
      if (oom == "split_batch") {
        stage.on_out_of_memory = OutOfMemoryPolicy::kSplitBatch;
      } else if (oom != "next_stage") {
        return invalid_argument(where + ": 'on_out_of_memory' must be \"next_stage\" or \"split_batch\"");
      }
      EMBER_ASSIGN(native_text, f.text("native", std::string(native_path_name(options.native))));
      auto native = parse_native_path(native_text);
      if (!native.ok()) return native.status().with_context(where);
      EMBER_RETURN_IF_ERROR(take(torchscript_stage(*file, device, input_width, options, dtype, *native), optional));
    } else if (type == "aoti") {
      // An AOTInductor package (.pt2): needs LibTorch, like torchscript.
      EMBER_RETURN_IF_ERROR(f.only({"type", "name", "path", "optional", "breaker"}));
      std::string path;
      bool optional = false;
      EMBER_ASSIGN(path, f.text("path", "model.pt2"));
      EMBER_ASSIGN(optional, f.flag("optional", false));
      auto file = confined_path(model_dir, path, where + ": 'path'");
      if (!file.ok()) return file.status();
      EMBER_RETURN_IF_ERROR(take(aoti_stage(*file, input_width, options), optional));
    } else if (type == "native") {
      // A network in net.json, run by ember's kernels: no LibTorch needed.
      EMBER_RETURN_IF_ERROR(f.only({"type", "name", "path", "breaker"}));
      std::string path;
      EMBER_ASSIGN(path, f.text("path", "net.json"));
      auto file = confined_path(model_dir, path, where + ": 'path'");
      if (!file.ok()) return file.status();
      auto net = NativeExecutor::load(*file);
      if (!net.ok()) return net.status().with_context(where);
      if ((*net)->inputs() != static_cast<std::int64_t>(input_width)) {
        return invalid_argument(where + ": the network takes " + std::to_string((*net)->inputs()) + " columns");
      }
      built = make_executor_stage(std::shared_ptr<const Executor>(std::move(net).value()), DType::kFloat32);
    } else if (type == "linear") {
      EMBER_RETURN_IF_ERROR(f.only({"type", "name", "path", "output", "output_name", "breaker"}));
      std::string path, output, output_name;
      EMBER_ASSIGN(path, f.text("path", "linear.json"));
      EMBER_ASSIGN(output, f.text("output", "predict"));
      EMBER_ASSIGN(output_name, f.text("output_name", "output"));
      auto file = confined_path(model_dir, path, where + ": 'path'");
      if (!file.ok()) return file.status();
      auto model = LinearModel::load(*file);
      if (!model.ok()) return model.status().with_context(where);
      auto which = parse_linear_output(output);
      if (!which.ok()) return which.status().with_context(where);
      auto st = make_linear_stage(std::move(model).value(), *which, output_name);
      if (!st.ok()) return st.status().with_context(where);
      built = *st;
      stage.breaker.reset();
    } else if (type == "cache") {
      EMBER_RETURN_IF_ERROR(f.only({"type", "name", "capacity", "ttl_ms"}));
      CacheOptions co;
      EMBER_ASSIGN(co.capacity, f.count("capacity", co.capacity, 1, 100'000'000));
      EMBER_ASSIGN(co.time_to_live, f.millis("ttl_ms", co.time_to_live, true));
      auto st = make_cache_stage(co, options.clock);
      if (!st.ok()) return st.status().with_context(where);
      built = *st;
      stage.breaker.reset();
    } else if (type == "default") {
      EMBER_RETURN_IF_ERROR(f.only({"type", "name", "outputs"}));
      if (!f.has("outputs")) return invalid_argument(where + ": 'outputs' is required");
      auto outputs = parse_default_outputs(f.at("outputs"), where);
      if (!outputs.ok()) return outputs.status();
      auto st = make_default_stage(std::move(outputs).value());
      if (!st.ok()) return st.status().with_context(where);
      built = *st;
      stage.breaker.reset();
    } else {
      return invalid_argument(where + ": unknown stage type '" + type + "' (torchscript, aoti, native, linear, cache, default)");
    }
    if (f.has("breaker")) {
      const Json& b = f.at("breaker");
      if (b.is_boolean() && !b.get<bool>()) {
        stage.breaker.reset();
      } else {
        auto config = parse_breaker(b, where);
        if (!config.ok()) return config.status();
        stage.breaker = *config;
      }
    }
    if (skip) continue;
    stage.stage = std::move(built);
    chain.stages.push_back(std::move(stage));
  }
  if (chain.stages.empty()) return invalid_argument("chain: every stage was left out");
  return chain;
} catch (const std::exception& e) {
  // nlohmann throws on a value of an unexpected type that a check above missed: it must
  // never leave as an exception.
  return invalid_argument(std::string("chain: malformed: ") + e.what());
}

#undef EMBER_ASSIGN

}  // namespace detail

Result<std::unique_ptr<FallbackChain>> load_chain(const std::filesystem::path& chain_json,
                                                 const std::filesystem::path& model_dir, std::size_t input_width,
                                                 const ModelOptions& options) {
  auto text = detail::read_text_file(chain_json, "chain file", std::size_t{1} << 20);
  if (!text.ok()) return text.status();
  auto chain = detail::parse_chain(*text, model_dir, input_width, options);
  if (!chain.ok()) return chain.status().with_context("'" + chain_json.string() + "'");
  return detail::finish_chain(std::move(chain).value(), options);
}

Result<std::unique_ptr<FallbackChain>> load_chain(const std::filesystem::path& chain_json,
                                                 const std::filesystem::path& model_dir, std::size_t input_width) {
  const ModelOptions defaults;
  return load_chain(chain_json, model_dir, input_width, defaults);
}

}  // namespace ember
