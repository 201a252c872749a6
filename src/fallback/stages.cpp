// The built-in stages: an executor, a linear model, a cache, a default answer, and the
// fault injector that wraps any of them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "ember/fallback.hpp"
#include "fallback/stage_outputs.hpp"

namespace ember {

Stage::~Stage() = default;
Result<std::vector<OutputSpec>> Stage::outputs(std::size_t /*input_width*/) const { return std::vector<OutputSpec>{}; }
void Stage::observe(const Tensor& /*features*/, const NamedTensors& /*outputs*/) const {}
void Stage::cancel() const {}

Status Stage::run_into(const Tensor& features, NamedTensors& out) const {
  auto answer = run(features);
  if (!answer.ok()) return answer.status();
  out = std::move(answer).value();
  return {};
}

namespace detail {

Status writable_outputs(NamedTensors& out, const std::vector<OutputSpec>& specs, std::int64_t rows) {
  bool fits = out.size() == specs.size();
  for (std::size_t k = 0; fits && k < specs.size(); ++k) {
    const Tensor& t = out[k].tensor;
    const OutputSpec& spec = specs[k];
    fits = out[k].name == spec.name && t.dtype() == spec.dtype && t.device().is_cpu() && t.unique() &&
           t.dim() == static_cast<std::int64_t>(spec.row_shape.size()) + 1 && t.size(0) == rows &&
           std::equal(spec.row_shape.begin(), spec.row_shape.end(), t.shape().begin() + 1);
  }
  if (fits) return {};
  NamedTensors fresh;
  fresh.reserve(specs.size());
  for (const auto& spec : specs) {
    std::vector<std::int64_t> shape{rows};
    shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
    auto t = Tensor::zeros(spec.dtype, std::move(shape));
    if (!t.ok()) return t.status();
    EMBER_RETURN_IF_ERROR(fresh.add(spec.name, std::move(t).value()));
  }
  out = std::move(fresh);
  return {};
}

}  // namespace detail

std::string describe_outputs(const std::vector<OutputSpec>& outputs) {
  std::string s;
  for (const auto& o : outputs) {
    if (!s.empty()) s += "; ";
    s += o.name + ": " + std::string(dtype_name(o.dtype)) + " [rows";
    for (auto d : o.row_shape) s += ", " + std::to_string(d);
    s += "]";
  }
  return s.empty() ? "no outputs" : s;
}

namespace {

// ---------------------------------------------------------------------------------
// The model's input: the chain's float64 rows cast to the dtype the model takes, in a
// buffer of the calling thread's own. The model may write into it (x.clamp_(0, 1)): the
// chain's rows, which later stages and the cache see, stay as they were. Outputs that
// alias the input are copied by the executor, so reusing the buffer is safe.
template <typename T>
Result<const Tensor*> cast_rows(const Tensor& features) {
  struct Buffer {
    std::vector<T> values;
    Tensor view;  // kept while it fits: making a Tensor allocates its shape
  };
  thread_local Buffer b;
  const auto src = features.values<double>();
  if (b.values.size() < src.size()) b.values.resize(src.size());
  std::copy(src.begin(), src.end(), b.values.begin());  // a cast, element by element
  if (!b.view.defined() || b.view.data() != b.values.data() || b.view.shape() != features.shape()) {
    auto view = Tensor::view(std::span<T>(b.values.data(), src.size()), features.shape());
    if (!view.ok()) return view.status();
    b.view = std::move(view).value();
  }
  return &b.view;
}

class ExecutorStage final : public Stage {
 public:
  ExecutorStage(std::shared_ptr<const Executor> executor, DType input_dtype)
      : executor_(std::move(executor)), dtype_(input_dtype) {}

  Result<NamedTensors> run(const Tensor& features) const override {
    if (features.dtype() != DType::kFloat64 || !features.device().is_cpu()) {
      return invalid_argument("a model stage takes a float64 host matrix, got " + features.describe());
    }
    auto input = dtype_ == DType::kFloat32 ? cast_rows<float>(features) : cast_rows<double>(features);
    if (!input.ok()) return input.status();
    return executor_->run({*input, 1});
  }
  std::string type() const override {
    const std::string name = executor_->name();
    return name.substr(0, name.find(':'));
  }
  Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const override {
    if (dtype_ != DType::kFloat32 && dtype_ != DType::kFloat64) {
      return invalid_argument(executor_->name() + ": a model stage's input dtype must be float32 or float64, not " +
                              std::string(dtype_name(dtype_)));
    }
    auto zeros = Tensor::zeros(DType::kFloat64, {1, static_cast<std::int64_t>(input_width)});
    if (!zeros.ok()) return zeros.status();
    // Three runs: LibTorch's profiling executor settles after two, so they also spare
    // the first request the JIT's optimisation.
    Result<NamedTensors> out = Status(StatusCode::kUnknown, "not run");
    for (int i = 0; i < 3 && (i == 0 || out.ok()); ++i) out = run(*zeros);
    if (!out.ok()) {
      // The model cannot take rows of this width: the parts of the model do not fit.
      const StatusCode code =
          out.status().code() == StatusCode::kInternal ? StatusCode::kInvalidArgument : out.status().code();
      return Status(code, executor_->name() + " does not accept a row of " + std::to_string(input_width) + " " +
                              std::string(dtype_name(dtype_)) + " zeros: " + out.status().message());
    }
    std::vector<OutputSpec> specs;
    for (const auto& e : *out) {
      if (e.tensor.dim() < 1 || e.tensor.size(0) != 1) {
        return invalid_argument(executor_->name() + " output '" + e.name + "' is " + e.tensor.describe() +
                                ", not one row per input row");
      }
      specs.push_back({e.name, e.tensor.dtype(), {e.tensor.shape().begin() + 1, e.tensor.shape().end()}});
    }
    return specs;
  }

 private:
  std::shared_ptr<const Executor> executor_;
  DType dtype_;
};

// ---------------------------------------------------------------------------------
class LinearStage final : public detail::WritingStage {
 public:
  LinearStage(LinearModel model, LinearOutput output, std::string name, std::size_t width)
      : model_(std::move(model)), output_(output), name_(std::move(name)), width_(width) {
    specs_.push_back({name_, DType::kFloat32, {}});
    if (width_ > 1) specs_[0].row_shape.push_back(static_cast<std::int64_t>(width_));
  }

  Status run_into(const Tensor& features, NamedTensors& out) const override {
    const auto values = features.values<double>();
    if (features.dim() != 2 || features.dtype() != DType::kFloat64 || !features.device().is_cpu() ||
        static_cast<std::size_t>(features.size(1)) != model_.input_width()) {
      return invalid_argument("linear model takes rows of " + std::to_string(model_.input_width()) +
                              " float64 values, got " + features.describe());
    }
    const auto rows = static_cast<std::size_t>(features.size(0));
    thread_local std::vector<double> scratch;  // grows to the largest batch seen, then stays
    if (scratch.size() < rows * width_) scratch.resize(rows * width_);
    const std::span<double> z(scratch.data(), rows * width_);
    EMBER_RETURN_IF_ERROR(model_.evaluate(values, rows, output_, z));
    EMBER_RETURN_IF_ERROR(detail::writable_outputs(out, specs_, features.size(0)));
    auto dst = out[0].tensor.values<float>();
    for (std::size_t i = 0; i < z.size(); ++i) dst[i] = static_cast<float>(z[i]);
    return {};
  }
  std::string type() const override { return "linear"; }
  Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const override {
    if (input_width != model_.input_width()) {
      return invalid_argument("the linear model takes " + std::to_string(model_.input_width()) +
                              " columns but the chain's rows have " + std::to_string(input_width));
    }
    return specs_;
  }
  bool bounded() const override { return true; }

 private:
  LinearModel model_;
  LinearOutput output_;
  std::string name_;
  std::size_t width_;
  std::vector<OutputSpec> specs_;
};

// ---------------------------------------------------------------------------------
class DefaultStage final : public detail::WritingStage {
 public:
  explicit DefaultStage(std::vector<DefaultOutput> outputs) : outputs_(std::move(outputs)) {
    for (const auto& o : outputs_) {
      OutputSpec spec{o.name, DType::kFloat32, {}};
      if (o.values.size() > 1) spec.row_shape.push_back(static_cast<std::int64_t>(o.values.size()));
      specs_.push_back(std::move(spec));
    }
  }

  Status run_into(const Tensor& features, NamedTensors& out) const override {
    if (features.dim() < 1) return invalid_argument("default: the input has no rows");
    EMBER_RETURN_IF_ERROR(detail::writable_outputs(out, specs_, features.size(0)));
    for (std::size_t k = 0; k < outputs_.size(); ++k) {
      const auto& values = outputs_[k].values;
      auto dst = out[k].tensor.values<float>();
      for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = values[i % values.size()];
    }
    return {};
  }
  std::string type() const override { return "default"; }
  Result<std::vector<OutputSpec>> outputs(std::size_t /*input_width*/) const override { return specs_; }
  bool bounded() const override { return true; }

 private:
  std::vector<DefaultOutput> outputs_;
  std::vector<OutputSpec> specs_;
};

}  // namespace

std::shared_ptr<Stage> make_executor_stage(std::shared_ptr<const Executor> executor, DType input_dtype) {
  return std::make_shared<ExecutorStage>(std::move(executor), input_dtype);
}

Result<std::shared_ptr<Stage>> make_linear_stage(LinearModel model, LinearOutput output, std::string output_name) {
  auto width = model.output_width(output);
  if (!width.ok()) return width.status();
  if (output_name.empty()) return invalid_argument("linear stage: the output name is empty");
  return std::shared_ptr<Stage>(std::make_shared<LinearStage>(std::move(model), output, std::move(output_name), *width));
}

Result<std::shared_ptr<Stage>> make_default_stage(std::vector<DefaultOutput> outputs) {
  if (outputs.empty()) return invalid_argument("default: no outputs given");
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const auto& o = outputs[i];
    if (o.name.empty()) return invalid_argument("default: output " + std::to_string(i) + " has no name");
    for (std::size_t j = 0; j < i; ++j) {
      if (outputs[j].name == o.name) return invalid_argument("default: output '" + o.name + "' is given twice");
    }
    if (o.values.empty() || o.values.size() > 1'000'000) {
      return invalid_argument("default: output '" + o.name + "' needs 1 to 1000000 values");
    }
    for (float v : o.values) {
      if (!std::isfinite(v)) return invalid_argument("default: output '" + o.name + "' holds a non-finite value");
    }
  }
  return std::shared_ptr<Stage>(std::make_shared<DefaultStage>(std::move(outputs)));
}

// ---------------------------------------------------------------------------------
std::string_view fault_kind_name(FaultKind kind) noexcept {
  switch (kind) {
    case FaultKind::kThrow: return "throw";
    case FaultKind::kError: return "error";
    case FaultKind::kHang: return "hang";
    case FaultKind::kSlow: return "slow";
    case FaultKind::kNaN: return "nan";
    case FaultKind::kOutOfMemory: return "oom";
  }
  return "unknown";
}

namespace {

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  const std::string_view unit(ptr, static_cast<std::size_t>(end - ptr));
  double scale = 0;
  if (unit == "ns") scale = 1;
  else if (unit == "us") scale = 1e3;
  else if (unit == "ms") scale = 1e6;
  else if (unit == "s") scale = 1e9;
  if (ec != std::errc() || scale == 0 || !std::isfinite(value) || value < 0 || value * scale > 3.6e12) {
    return invalid_argument("bad duration '" + std::string(text) + "' (a number up to an hour with ns, us, ms or s)");
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(value * scale));
}

template <typename T>
Result<T> parse_number(std::string_view key, std::string_view text) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return invalid_argument("bad value '" + std::string(text) + "' for " + std::string(key));
  }
  return value;
}

}  // namespace

Result<FaultRule> parse_fault_rule(std::string_view text) {
  FaultRule rule;
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view part = text.substr(start, comma - start);
    start = comma + 1;
    if (first) {
      first = false;
      const std::size_t colon = part.find(':');
      const std::string_view kind = part.substr(0, colon);
      bool known = false;
      for (auto k : {FaultKind::kThrow, FaultKind::kError, FaultKind::kHang, FaultKind::kSlow, FaultKind::kNaN,
                     FaultKind::kOutOfMemory}) {
        if (fault_kind_name(k) == kind) {
          rule.kind = k;
          known = true;
        }
      }
      if (!known) {
        return invalid_argument("fault '" + std::string(text) + "': unknown kind '" + std::string(kind) +
                                "' (throw, error, hang, slow, nan, oom)");
      }
      if (colon != std::string_view::npos) {
        auto d = parse_duration(part.substr(colon + 1));
        if (!d.ok()) return d.status().with_context("fault '" + std::string(text) + "'");
        rule.duration = *d;
      } else if (rule.kind == FaultKind::kSlow) {
        return invalid_argument("fault '" + std::string(text) + "': slow needs a duration (slow:20ms)");
      }
      continue;
    }
    const std::size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument("fault '" + std::string(text) + "': '" + std::string(part) + "' is not KEY=VALUE");
    }
    const std::string_view key = part.substr(0, eq);
    const std::string_view value = part.substr(eq + 1);
    Status status;
    const auto take = [&](auto parsed, auto& field) {
      if (parsed.ok()) field = *parsed; else status = parsed.status();
    };
    if (key == "p") take(parse_number<double>(key, value), rule.probability);
    else if (key == "first") take(parse_number<std::uint64_t>(key, value), rule.first_call);
    else if (key == "every") take(parse_number<std::uint64_t>(key, value), rule.every);
    else if (key == "count") take(parse_number<std::uint64_t>(key, value), rule.count);
    else if (key == "min_rows") take(parse_number<std::size_t>(key, value), rule.min_rows);
    else status = invalid_argument("unknown key '" + std::string(key) + "' (p, first, every, count, min_rows)");
    if (!status.ok()) return status.with_context("fault '" + std::string(text) + "'");
  }
  if (!(rule.probability >= 0 && rule.probability <= 1)) {
    return invalid_argument("fault '" + std::string(text) + "': p must be in [0, 1]");
  }
  if (rule.every == 0) return invalid_argument("fault '" + std::string(text) + "': every must be at least 1");
  return rule;
}

struct FaultInjector::State {
  std::vector<FaultRule> rules;
  std::mutex mutex;
  std::condition_variable released_cv;
  bool released = false;
  std::mt19937_64 rng;
  std::vector<std::uint64_t> hits;
  std::uint64_t calls = 0;
  std::uint64_t injected = 0;
};

FaultInjector::FaultInjector(std::shared_ptr<const Stage> inner, std::vector<FaultRule> rules,
                             std::shared_ptr<const Clock> clock, std::uint64_t seed)
    : inner_(std::move(inner)), clock_(std::move(clock)), state_(std::make_unique<State>()) {
  state_->hits.assign(rules.size(), 0);
  state_->rules = std::move(rules);
  state_->rng.seed(seed);
}

FaultInjector::~FaultInjector() = default;

Result<std::shared_ptr<FaultInjector>> FaultInjector::wrap(std::shared_ptr<const Stage> inner,
                                                           std::vector<FaultRule> rules,
                                                           std::shared_ptr<const Clock> clock, std::uint64_t seed) {
  if (inner == nullptr) return invalid_argument("fault injector: no stage to wrap");
  for (const auto& r : rules) {
    if (!(r.probability >= 0 && r.probability <= 1)) return invalid_argument("fault injector: probability must be in [0, 1]");
    if (r.every == 0) return invalid_argument("fault injector: every must be at least 1");
    if (r.duration.count() < 0) return invalid_argument("fault injector: duration must not be negative");
  }
  if (clock == nullptr) clock = std::make_shared<SteadyClock>();
  return std::shared_ptr<FaultInjector>(new FaultInjector(std::move(inner), std::move(rules), std::move(clock), seed));
}

Result<NamedTensors> FaultInjector::run(const Tensor& features) const {
  const FaultRule* hit = nullptr;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    const std::uint64_t call = state_->calls++;
    const std::size_t rows = features.dim() > 0 ? static_cast<std::size_t>(features.size(0)) : 0;
    for (std::size_t i = 0; i < state_->rules.size() && hit == nullptr; ++i) {
      const FaultRule& r = state_->rules[i];
      if (call < r.first_call || (call - r.first_call) % r.every != 0 || rows < r.min_rows ||
          state_->hits[i] >= r.count) {
        continue;
      }
      if (r.probability < 1 && std::uniform_real_distribution<double>(0, 1)(state_->rng) >= r.probability) continue;
      ++state_->hits[i];
      ++state_->injected;
      hit = &r;
    }
  }
  if (hit == nullptr) return inner_->run(features);
  switch (hit->kind) {
    case FaultKind::kThrow: throw std::runtime_error("injected fault: the model threw");
    case FaultKind::kError: return internal_error("injected fault: the model failed");
    case FaultKind::kOutOfMemory:
      return resource_exhausted("injected fault: out of memory on a batch of " +
                                std::to_string(features.dim() > 0 ? features.size(0) : 0) + " rows");
    case FaultKind::kHang: {
      std::unique_lock<std::mutex> lock(state_->mutex);
      const auto released = [&] { return state_->released; };
      if (hit->duration.count() > 0) {
        state_->released_cv.wait_for(lock, hit->duration, released);
      } else {
        state_->released_cv.wait(lock, released);
      }
      return internal_error("injected fault: the model hung");
    }
    case FaultKind::kSlow: clock_->sleep_for(hit->duration); return inner_->run(features);
    case FaultKind::kNaN: {
      auto out = inner_->run(features);
      if (!out.ok()) return out;
      NamedTensors poisoned;
      for (const auto& e : *out) {
        auto copy = e.tensor.clone();
        if (!copy.ok()) return copy.status();
        for (float& v : copy->values<float>()) v = std::numeric_limits<float>::quiet_NaN();
        for (double& v : copy->values<double>()) v = std::numeric_limits<double>::quiet_NaN();
        EMBER_RETURN_IF_ERROR(poisoned.add(e.name, std::move(copy).value()));
      }
      return poisoned;
    }
  }
  return internal_error("injected fault of an unknown kind");
}

std::string FaultInjector::type() const { return inner_->type(); }
Result<std::vector<OutputSpec>> FaultInjector::outputs(std::size_t input_width) const {
  return inner_->outputs(input_width);
}
bool FaultInjector::bounded() const {
  for (const auto& r : state_->rules) {
    if (r.kind == FaultKind::kHang || r.kind == FaultKind::kSlow) return false;
  }
  return inner_->bounded();
}
void FaultInjector::observe(const Tensor& features, const NamedTensors& outputs) const {
  inner_->observe(features, outputs);
}
void FaultInjector::cancel() const {
  release_hangs();
  inner_->cancel();
}
void FaultInjector::release_hangs() const {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->released = true;
  }
  state_->released_cv.notify_all();
}
std::uint64_t FaultInjector::injected() const noexcept {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->injected;
}
std::uint64_t FaultInjector::calls() const noexcept {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->calls;
}

}  // namespace ember
