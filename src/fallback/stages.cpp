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

namespace ember {

Stage::~Stage() = default;
Result<std::vector<OutputSpec>> Stage::outputs(std::size_t /*input_width*/) const { return std::vector<OutputSpec>{}; }
void Stage::observe(const Tensor& /*features*/, const NamedTensors& /*outputs*/) const {}
void Stage::cancel() const {}

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
class ExecutorStage final : public Stage {
 public:
  explicit ExecutorStage(std::shared_ptr<const Executor> executor) : executor_(std::move(executor)) {}

  Result<NamedTensors> run(const Tensor& features) const override { return executor_->run({&features, 1}); }
  std::string type() const override {
    const std::string name = executor_->name();
    return name.substr(0, name.find(':'));
  }
  Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const override {
    auto zeros = Tensor::zeros(DType::kFloat32, {1, static_cast<std::int64_t>(input_width)});
    if (!zeros.ok()) return zeros.status();
    // Three runs: LibTorch's profiling executor settles after two, so they also spare
    // the first request the JIT's optimisation.
    Result<NamedTensors> out = Status(StatusCode::kUnknown, "not run");
    for (int i = 0; i < 3 && (i == 0 || out.ok()); ++i) out = executor_->run({&*zeros, 1});
    if (!out.ok()) {
      // The model cannot take rows of this width: the parts of the model do not fit.
      const StatusCode code =
          out.status().code() == StatusCode::kInternal ? StatusCode::kInvalidArgument : out.status().code();
      return Status(code, executor_->name() + " does not accept a row of " + std::to_string(input_width) +
                              " float32 zeros: " + out.status().message());
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
};

// ---------------------------------------------------------------------------------
class LinearStage final : public Stage {
 public:
  LinearStage(LinearModel model, LinearOutput output, std::string name, std::size_t width)
      : model_(std::move(model)), output_(output), name_(std::move(name)), width_(width) {}

  Result<NamedTensors> run(const Tensor& features) const override {
    const auto values = features.values<float>();
    if (features.dim() != 2 || features.dtype() != DType::kFloat32 || !features.device().is_cpu() ||
        static_cast<std::size_t>(features.size(1)) != model_.input_width()) {
      return invalid_argument("linear model takes rows of " + std::to_string(model_.input_width()) +
                              " float32 values, got " + features.describe());
    }
    const auto rows = static_cast<std::size_t>(features.size(0));
    std::vector<double> scratch(rows * width_);
    EMBER_RETURN_IF_ERROR(model_.evaluate(values, rows, output_, scratch));
    std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows)};
    if (width_ > 1) shape.push_back(static_cast<std::int64_t>(width_));
    auto out = Tensor::zeros(DType::kFloat32, shape);
    if (!out.ok()) return out.status();
    auto dst = out->values<float>();
    for (std::size_t i = 0; i < scratch.size(); ++i) dst[i] = static_cast<float>(scratch[i]);
    NamedTensors result;
    EMBER_RETURN_IF_ERROR(result.add(name_, std::move(out).value()));
    return result;
  }
  std::string type() const override { return "linear"; }
  Result<std::vector<OutputSpec>> outputs(std::size_t input_width) const override {
    if (input_width != model_.input_width()) {
      return invalid_argument("the linear model takes " + std::to_string(model_.input_width()) +
                              " columns but the chain's rows have " + std::to_string(input_width));
    }
    OutputSpec spec{name_, DType::kFloat32, {}};
    if (width_ > 1) spec.row_shape.push_back(static_cast<std::int64_t>(width_));
    return std::vector<OutputSpec>{spec};
  }
  bool bounded() const override { return true; }

 private:
  LinearModel model_;
  LinearOutput output_;
  std::string name_;
  std::size_t width_;
};

// ---------------------------------------------------------------------------------
std::uint64_t mix(std::uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A hash of a feature row: four independent lanes over 32-byte blocks (so the CPU works
// on them in parallel), mixed at the end. Fast and good enough for a cache key:
// collisions are caught by comparing the stored row.
std::uint64_t hash_bytes(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t lanes[4] = {n, kMul, ~n, kMul ^ n};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      std::uint64_t w = 0;
      std::memcpy(&w, p + i + 8 * static_cast<std::size_t>(k), 8);
      lanes[k] = (lanes[k] ^ w) * kMul;
      lanes[k] ^= lanes[k] >> 31;
    }
  }
  std::uint64_t tail = 0;
  for (std::size_t j = 0; i < n; ++i, ++j) tail ^= static_cast<std::uint64_t>(p[i]) << ((j % 8) * 8);
  return mix(lanes[0] ^ mix(lanes[1] ^ mix(lanes[2] ^ mix(lanes[3] ^ tail))));
}

class CacheStage final : public Stage {
 public:
  CacheStage(CacheOptions options, std::shared_ptr<const Clock> clock) : options_(options), clock_(std::move(clock)) {}

  Result<NamedTensors> run(const Tensor& features) const override {
    if (features.dim() != 2 || features.dtype() != DType::kFloat32 || !features.device().is_cpu()) {
      return invalid_argument("cache takes a float32 matrix, got " + features.describe());
    }
    const auto rows = static_cast<std::size_t>(features.size(0));
    const std::size_t key_bytes = static_cast<std::size_t>(features.size(1)) * sizeof(float);
    const auto* base = static_cast<const std::byte*>(features.data());
    std::lock_guard<std::mutex> lock(mutex_);
    if (used_ == 0 || key_bytes != key_bytes_) return not_found("cache: nothing cached for rows like these");
    const auto now = clock_->coarse_now();
    std::vector<std::uint32_t> hits;
    hits.reserve(rows);
    std::size_t missing = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::byte* key = base + r * key_bytes;
      const auto it = index_.find(hash_bytes(key, key_bytes));
      if (it == index_.end() || std::memcmp(arena(it->second), key, key_bytes) != 0 ||
          now - slots_[it->second].stored_at > options_.time_to_live) {
        ++missing;
        continue;
      }
      hits.push_back(it->second);
    }
    if (missing > 0) {
      return not_found("cache: " + std::to_string(missing) + " of " + std::to_string(rows) +
                       " rows have no fresh answer");
    }
    NamedTensors out;
    std::size_t offset = key_bytes_;
    for (const auto& spec : specs_) {
      std::vector<std::int64_t> shape{static_cast<std::int64_t>(rows)};
      shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
      auto t = Tensor::zeros(spec.dtype, shape);
      if (!t.ok()) return t.status();
      const std::size_t row_bytes = t->nbytes() / std::max<std::size_t>(rows, 1);
      auto* dst = static_cast<std::byte*>(t->data());
      for (std::size_t r = 0; r < rows; ++r) std::memcpy(dst + r * row_bytes, arena(hits[r]) + offset, row_bytes);
      offset += row_bytes;
      EMBER_RETURN_IF_ERROR(out.add(spec.name, std::move(t).value()));
    }
    for (std::uint32_t slot : hits) touch(slot);
    return out;
  }

  void observe(const Tensor& features, const NamedTensors& outputs) const override {
    if (features.dim() != 2 || features.dtype() != DType::kFloat32 || !features.device().is_cpu()) return;
    const auto rows = static_cast<std::size_t>(features.size(0));
    if (rows == 0) return;
    const std::size_t key_bytes = static_cast<std::size_t>(features.size(1)) * sizeof(float);
    std::lock_guard<std::mutex> lock(mutex_);
    if (slots_.empty() && !layout(outputs, rows, key_bytes)) return;
    if (key_bytes != key_bytes_ || outputs.size() != specs_.size()) return;
    for (std::size_t k = 0; k < specs_.size(); ++k) {
      const Tensor& t = outputs[k].tensor;
      if (outputs[k].name != specs_[k].name || t.dtype() != specs_[k].dtype || !t.device().is_cpu() ||
          t.dim() < 1 || static_cast<std::size_t>(t.size(0)) != rows || t.nbytes() != rows * row_bytes_[k]) {
        return;  // not the layout this cache stores
      }
    }
    const auto now = clock_->coarse_now();
    const auto* base = static_cast<const std::byte*>(features.data());
    for (std::size_t r = 0; r < rows; ++r) {
      const std::byte* key = base + r * key_bytes;
      const std::uint64_t h = hash_bytes(key, key_bytes);
      std::uint32_t slot = 0;
      if (auto it = index_.find(h); it != index_.end()) {
        slot = it->second;  // the same row again (or a collision: the newer row wins)
      } else if (used_ < options_.capacity) {
        if (used_ == slots_.size()) grow();
        slot = static_cast<std::uint32_t>(used_++);
        index_.emplace(h, slot);
        link_front(slot);
      } else {
        slot = tail_;  // evict the least recently used, reusing its index node
        auto node = index_.extract(slots_[slot].hash);
        node.key() = h;
        index_.insert(std::move(node));
      }
      Slot& s = slots_[slot];
      s.hash = h;
      s.stored_at = now;
      std::byte* dst = arena(slot);
      std::memcpy(dst, key, key_bytes);
      std::size_t offset = key_bytes;
      for (std::size_t k = 0; k < specs_.size(); ++k) {
        std::memcpy(dst + offset, static_cast<const std::byte*>(outputs[k].tensor.data()) + r * row_bytes_[k],
                    row_bytes_[k]);
        offset += row_bytes_[k];
      }
      touch(slot);
    }
  }

  std::string type() const override { return "cache"; }
  bool bounded() const override { return true; }

 private:
  static constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
  struct Slot {
    std::uint64_t hash = 0;
    std::chrono::nanoseconds stored_at{0};
    std::uint32_t prev = kNone, next = kNone;  // recency list, head = most recent
  };

  // Fixes the stored layout from the first answer seen.
  bool layout(const NamedTensors& outputs, std::size_t rows, std::size_t key_bytes) const {
    std::size_t bytes = key_bytes;
    for (const auto& e : outputs) {
      if (!e.tensor.device().is_cpu() || e.tensor.dim() < 1 || static_cast<std::size_t>(e.tensor.size(0)) != rows) {
        return false;
      }
      specs_.push_back({e.name, e.tensor.dtype(), {e.tensor.shape().begin() + 1, e.tensor.shape().end()}});
      row_bytes_.push_back(e.tensor.nbytes() / rows);
      bytes += row_bytes_.back();
    }
    key_bytes_ = key_bytes;
    slot_bytes_ = bytes;
    grow();
    return true;
  }
  // Room for twice as many rows (up to the capacity): memory is taken as the cache fills.
  void grow() const {
    const std::size_t n = std::min(options_.capacity, std::max<std::size_t>(64, 2 * slots_.size()));
    slots_.resize(n);
    arena_.resize(n * slot_bytes_);
    index_.reserve(n);
  }
  std::byte* arena(std::uint32_t slot) const { return arena_.data() + static_cast<std::size_t>(slot) * slot_bytes_; }
  void unlink(std::uint32_t i) const {
    Slot& s = slots_[i];
    if (s.prev != kNone) slots_[s.prev].next = s.next; else if (head_ == i) head_ = s.next;
    if (s.next != kNone) slots_[s.next].prev = s.prev; else if (tail_ == i) tail_ = s.prev;
    s.prev = s.next = kNone;
  }
  void link_front(std::uint32_t i) const {
    Slot& s = slots_[i];
    s.prev = kNone;
    s.next = head_;
    if (head_ != kNone) slots_[head_].prev = i;
    head_ = i;
    if (tail_ == kNone) tail_ = i;
  }
  void touch(std::uint32_t i) const {
    if (head_ == i) return;
    unlink(i);
    link_front(i);
  }

  CacheOptions options_;
  std::shared_ptr<const Clock> clock_;
  mutable std::mutex mutex_;
  mutable std::vector<OutputSpec> specs_;
  mutable std::vector<std::size_t> row_bytes_;
  mutable std::size_t key_bytes_ = 0, slot_bytes_ = 0, used_ = 0;
  mutable std::vector<Slot> slots_;
  mutable std::vector<std::byte> arena_;
  mutable std::unordered_map<std::uint64_t, std::uint32_t> index_;
  mutable std::uint32_t head_ = kNone, tail_ = kNone;
};

// ---------------------------------------------------------------------------------
class DefaultStage final : public Stage {
 public:
  explicit DefaultStage(std::vector<DefaultOutput> outputs) : outputs_(std::move(outputs)) {}

  Result<NamedTensors> run(const Tensor& features) const override {
    if (features.dim() < 1) return invalid_argument("default: the input has no rows");
    const std::int64_t rows = features.size(0);
    NamedTensors out;
    for (const auto& o : outputs_) {
      std::vector<std::int64_t> shape{rows};
      if (o.values.size() > 1) shape.push_back(static_cast<std::int64_t>(o.values.size()));
      auto t = Tensor::zeros(DType::kFloat32, shape);
      if (!t.ok()) return t.status();
      auto dst = t->values<float>();
      for (std::size_t i = 0; i < dst.size(); ++i) dst[i] = o.values[i % o.values.size()];
      EMBER_RETURN_IF_ERROR(out.add(o.name, std::move(t).value()));
    }
    return out;
  }
  std::string type() const override { return "default"; }
  Result<std::vector<OutputSpec>> outputs(std::size_t /*input_width*/) const override {
    std::vector<OutputSpec> specs;
    for (const auto& o : outputs_) {
      OutputSpec spec{o.name, DType::kFloat32, {}};
      if (o.values.size() > 1) spec.row_shape.push_back(static_cast<std::int64_t>(o.values.size()));
      specs.push_back(std::move(spec));
    }
    return specs;
  }
  bool bounded() const override { return true; }

 private:
  std::vector<DefaultOutput> outputs_;
};

}  // namespace

std::shared_ptr<Stage> make_executor_stage(std::shared_ptr<const Executor> executor) {
  return std::make_shared<ExecutorStage>(std::move(executor));
}

Result<std::shared_ptr<Stage>> make_linear_stage(LinearModel model, LinearOutput output, std::string output_name) {
  auto width = model.output_width(output);
  if (!width.ok()) return width.status();
  if (output_name.empty()) return invalid_argument("linear stage: the output name is empty");
  return std::shared_ptr<Stage>(std::make_shared<LinearStage>(std::move(model), output, std::move(output_name), *width));
}

Result<std::shared_ptr<Stage>> make_cache_stage(CacheOptions options, std::shared_ptr<const Clock> clock) {
  if (options.capacity == 0 || options.capacity > 100'000'000) {
    return invalid_argument("cache: capacity must be 1 to 100000000 rows, got " + std::to_string(options.capacity));
  }
  if (options.time_to_live.count() <= 0) return invalid_argument("cache: time_to_live must be positive");
  if (clock == nullptr) clock = std::make_shared<SteadyClock>();
  return std::shared_ptr<Stage>(std::make_shared<CacheStage>(options, std::move(clock)));
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
