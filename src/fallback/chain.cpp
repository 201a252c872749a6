// FallbackChain: tries its stages in order, each behind its breaker, within the
// request's latency budget; calls that miss the deadline finish on a worker.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "ember/fallback.hpp"
#include "core/striped.hpp"
#include "threads/spin.hpp"

namespace ember {
namespace detail {
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

// How long a requester polls for its answer before it sleeps (see threads/spin.hpp).
constexpr auto kSpin = std::chrono::microseconds(30);
// How long before a deadline a waiting requester stops sleeping and starts polling.
constexpr auto kDeadlineLead = std::chrono::microseconds(300);

// One budgeted call, shared by the requester and the worker.
struct Call {
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<bool> done{false};  // set with `result`, under the mutex
  bool abandoned = false;
  Result<NamedTensors> result = Status(StatusCode::kUnknown, "not run");
};

// Bumped on every request: striped, so that threads do not share their cache lines.
struct StageCounterSet {
  StripedCounter calls, served, failures, timeouts, slow_calls, not_permitted, rejected_by_bulkhead, fallbacks;
};

void bump(StripedCounter& c) { c.add(); }

// A view of rows [begin, end) of a host matrix.
Result<Tensor> row_slice(const Tensor& t, std::int64_t begin, std::int64_t end) {
  std::vector<std::int64_t> shape = t.shape();
  shape[0] = end - begin;
  const std::size_t row_bytes = t.nbytes() / static_cast<std::size_t>(std::max<std::int64_t>(t.size(0), 1));
  return Tensor::view_bytes(static_cast<std::byte*>(t.data()) + static_cast<std::size_t>(begin) * row_bytes, t.dtype(),
                            std::move(shape));
}

// Stacks two answers row-wise (same names, dtypes and row shapes).
Result<NamedTensors> concat_rows(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return internal_error("the halves of a split batch gave different outputs");
  NamedTensors out;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Tensor& x = a[i].tensor;
    const Tensor* y = b.find(a[i].name);
    if (y == nullptr || y->dtype() != x.dtype() || x.dim() < 1 || y->dim() != x.dim() || !x.device().is_cpu() ||
        !y->device().is_cpu() || !std::equal(x.shape().begin() + 1, x.shape().end(), y->shape().begin() + 1)) {
      return internal_error("the halves of a split batch gave different outputs for '" + a[i].name + "'");
    }
    std::vector<std::int64_t> shape = x.shape();
    shape[0] += y->size(0);
    auto t = Tensor::zeros(x.dtype(), shape);
    if (!t.ok()) return t.status();
    std::memcpy(t->data(), x.data(), x.nbytes());
    std::memcpy(static_cast<std::byte*>(t->data()) + x.nbytes(), y->data(), y->nbytes());
    EMBER_RETURN_IF_ERROR(out.add(a[i].name, std::move(t).value()));
  }
  return out;
}

bool shapes_match(const Tensor& t, std::int64_t rows, const OutputSpec& spec) {
  const auto& s = t.shape();
  return s.size() == spec.row_shape.size() + 1 && s[0] == rows &&
         std::equal(spec.row_shape.begin(), spec.row_shape.end(), s.begin() + 1);
}

std::int64_t row_numel(const OutputSpec& spec) {
  std::int64_t n = 1;
  for (auto d : spec.row_shape) n *= d;
  return n;
}

template <typename T>
std::int64_t first_non_finite(const Tensor& t) {
  const auto v = t.values<T>();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) return static_cast<std::int64_t>(i);
  }
  return -1;
}

}  // namespace

// The pool of a chain that has a budget and was given no executor.
Result<std::shared_ptr<TaskExecutor>> own_pool(std::size_t max_abandoned) {
  ThreadPoolOptions o;
  o.threads = 1;
  o.max_threads = max_abandoned + 4;
  auto pool = ThreadPool::create(o);
  if (!pool.ok()) return pool.status();
  return std::shared_ptr<TaskExecutor>(std::move(pool).value());
}

struct Link {
  std::string name;
  std::string type;
  std::shared_ptr<const Stage> stage;
  std::unique_ptr<CircuitBreaker> breaker;
  OutOfMemoryPolicy on_out_of_memory = OutOfMemoryPolicy::kNextStage;
  bool bounded = false;
  // Time calls on the clock's coarse reading: its error is under 2 % of the breaker's
  // slow-call duration, and it costs a few nanoseconds instead of a few dozen.
  bool coarse_timing = false;
  StageCounterSet counters;
};

struct ChainImpl {
  std::vector<std::unique_ptr<Link>> links;
  std::shared_ptr<TaskExecutor> executor;  // null without a budget, until one is needed
  // Tasks posted and not yet finished: the destructor waits for them, since they use
  // the links.
  std::mutex tasks_mutex;
  std::condition_variable tasks_done;
  std::size_t tasks_in_flight = 0;
  std::vector<OutputSpec> outputs;
  std::size_t input_width = 0;
  std::chrono::nanoseconds budget{0};
  std::size_t max_abandoned = 0;
  std::optional<ConfidencePolicy> confidence;
  std::shared_ptr<const Clock> clock;
  std::atomic<std::size_t> abandoned{0};
  std::atomic<std::uint64_t> needs_review{0};

  ~ChainImpl() {
    if (abandoned.load() > 0) {
      for (const auto& l : links) {
        try {
          l->stage->cancel();
        } catch (...) {  // a destructor must not throw; the wait below still waits
        }
      }
    }
    std::unique_lock<std::mutex> lock(tasks_mutex);
    tasks_done.wait(lock, [&] { return tasks_in_flight == 0; });
  }

  // Posts `task` to the executor, counted so that the destructor can wait for it.
  bool post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(tasks_mutex);
      ++tasks_in_flight;
    }
    bool posted = false;
    try {
      posted = executor != nullptr && executor->post([this, task = std::move(task)] {
        try {
          task();
        } catch (...) {  // the task's own handlers failed too (out of memory): still count it done
        }
        std::lock_guard<std::mutex> lock(tasks_mutex);
        --tasks_in_flight;
        tasks_done.notify_all();
      });
    } catch (...) {  // the host's post() threw, or the task could not be copied
    }
    if (!posted) {
      std::lock_guard<std::mutex> lock(tasks_mutex);
      --tasks_in_flight;
    }
    return posted;
  }

  // Runs `f` on the executor (which also warms a thread of it) and returns its result;
  // on the caller's thread when nothing can be posted.
  template <typename F>
  auto run_on_executor(F&& f) -> decltype(f()) {
    std::optional<decltype(f())> out;
    std::mutex m;
    std::condition_variable done;
    const bool posted = post([&] {
      auto r = f();
      std::lock_guard<std::mutex> lock(m);
      out.emplace(std::move(r));
      done.notify_all();
    });
    if (!posted) return f();
    std::unique_lock<std::mutex> lock(m);
    done.wait(lock, [&] { return out.has_value(); });
    return std::move(*out);
  }

  // The stage's answer, split into halves on out of memory when configured, checked.
  Result<NamedTensors> attempt(const Link& link, const Tensor& features) const {
    auto out = call(link, features);
    if (!out.ok()) return out;
    EMBER_RETURN_IF_ERROR(conform(link, *out, features.size(0)));
    return out;
  }

  // The same on the caller's thread, written into `out` (whose tensors a stage may
  // reuse: no allocation once warm for ember's own stages).
  Status attempt_into(const Link& link, const Tensor& features, NamedTensors& out) const {
    Status s;
    try {
      s = link.stage->run_into(features, out);
    } catch (...) {
      s = stage_exception();
    }
    const std::int64_t rows = features.size(0);
    if (!s.ok() && s.code() == StatusCode::kResourceExhausted &&
        link.on_out_of_memory == OutOfMemoryPolicy::kSplitBatch && rows >= 2) {
      auto split = halves(link, features);
      if (!split.ok()) return split.status();
      out = std::move(split).value();
      s = Status();
    }
    if (!s.ok()) return s;
    return conform(link, out, rows);
  }

  // What an exception a stage threw becomes; called in a catch block.
  static Status stage_exception() {
    try {
      throw;
    } catch (const std::bad_alloc&) {
      return Status(StatusCode::kResourceExhausted, "out of memory");
    } catch (const std::exception& e) {
      return internal_error(std::string("the stage threw: ") + e.what());
    } catch (...) {
      return internal_error("the stage threw a non-standard exception");
    }
  }

  static Result<NamedTensors> guarded(const Link& link, const Tensor& features) {
    try {
      return link.stage->run(features);
    } catch (...) {
      return stage_exception();
    }
  }

  Result<NamedTensors> call(const Link& link, const Tensor& features) const {
    Result<NamedTensors> out = guarded(link, features);
    const std::int64_t rows = features.size(0);
    if (out.ok() || out.status().code() != StatusCode::kResourceExhausted ||
        link.on_out_of_memory != OutOfMemoryPolicy::kSplitBatch || rows < 2) {
      return out;
    }
    return halves(link, features);
  }

  // The stage on each half of the batch (down to single rows), the answers stacked.
  Result<NamedTensors> halves(const Link& link, const Tensor& features) const {
    const std::int64_t rows = features.size(0);
    const std::int64_t half = rows / 2;
    auto a = row_slice(features, 0, half);
    auto b = row_slice(features, half, rows);
    if (!a.ok()) return a.status();
    if (!b.ok()) return b.status();
    auto first = call(link, *a);
    if (!first.ok()) return first;
    auto second = call(link, *b);
    if (!second.ok()) return second;
    return concat_rows(*first, *second);
  }

  // Makes `out` hold exactly the chain's outputs (in order, reshaped when each row has
  // the same number of values), or explains why it cannot.
  Status conform(const Link& link, NamedTensors& out, std::int64_t rows) const {
    bool exact = out.size() == outputs.size();
    for (std::size_t i = 0; exact && i < outputs.size(); ++i) {
      exact = out[i].name == outputs[i].name && out[i].tensor.dtype() == outputs[i].dtype &&
              out[i].tensor.device().is_cpu() && shapes_match(out[i].tensor, rows, outputs[i]);
    }
    if (!exact) {
      NamedTensors fixed;
      for (const auto& spec : outputs) {
        const Tensor* t = out.find(spec.name);
        if (t == nullptr) return internal_error("stage '" + link.name + "' gave no output '" + spec.name + "'");
        if (!t->device().is_cpu()) {
          return internal_error("stage '" + link.name + "' output '" + spec.name + "' is not in host memory");
        }
        if (t->dtype() != spec.dtype || t->dim() < 1 || t->size(0) != rows || t->numel() != rows * row_numel(spec)) {
          return internal_error("stage '" + link.name + "' output '" + spec.name + "' is " + t->describe() +
                                ", expected " + describe_outputs({spec}) + " with " + std::to_string(rows) + " rows");
        }
        std::vector<std::int64_t> shape{rows};
        shape.insert(shape.end(), spec.row_shape.begin(), spec.row_shape.end());
        auto reshaped = t->reshape(std::move(shape));
        if (!reshaped.ok()) return reshaped.status();
        EMBER_RETURN_IF_ERROR(fixed.add(spec.name, std::move(reshaped).value()));
      }
      out = std::move(fixed);
    }
    for (const auto& e : out) {
      std::int64_t bad = -1;
      if (e.tensor.dtype() == DType::kFloat32) bad = first_non_finite<float>(e.tensor);
      if (e.tensor.dtype() == DType::kFloat64) bad = first_non_finite<double>(e.tensor);
      if (bad >= 0) {
        const std::int64_t per_row = std::max<std::int64_t>(e.tensor.numel() / std::max<std::int64_t>(rows, 1), 1);
        return out_of_range("stage '" + link.name + "' output '" + e.name + "' holds NaN or Inf (row " +
                            std::to_string(bad / per_row) + ")");
      }
    }
    return {};
  }

  // Tells the stages after `answered` of a valid answer (the cache stores it). Best
  // effort: what a host's observe() throws is dropped, the answer stands.
  void observe_after(const Link& answered, const Tensor& features, const NamedTensors& out) const {
    bool after = false;
    for (const auto& l : links) {
      if (after) {
        try {
          l->stage->observe(features, out);
        } catch (...) {  // NOLINT(bugprone-empty-catch)
        }
      }
      if (l.get() == &answered) after = true;
    }
  }

  // Runs an unbounded stage on a worker and waits for it until the deadline.
  Result<NamedTensors> attempt_with_deadline(const Link& link, const Tensor& owned, SteadyTime deadline,
                                             bool& timed_out) {
    auto state = std::make_shared<Call>();
    const bool submitted = post([this, &link, state, owned] {
      Result<NamedTensors> r = Status(StatusCode::kResourceExhausted, "out of memory");
      try {
        r = attempt(link, owned);
      } catch (...) {  // out of memory while checking the answer
      }
      std::unique_lock<std::mutex> lock(state->mutex);
      if (state->abandoned) {
        lock.unlock();
        if (r.ok()) observe_after(link, owned, *r);
        abandoned.fetch_sub(1, std::memory_order_acq_rel);
        return;
      }
      state->result = std::move(r);
      state->done.store(true, std::memory_order_release);
      state->cv.notify_all();
    });
    if (!submitted) return resource_exhausted("no thread of the executor is free for stage '" + link.name + "'");
    const auto ready = [&] { return state->done.load(std::memory_order_acquire); };
    spin_until(ready, std::min(deadline, std::chrono::steady_clock::now() + kSpin));
    std::unique_lock<std::mutex> lock(state->mutex);
    // Sleep until shortly before the deadline, then poll: waking from a sleep can be late
    // by a fraction of a millisecond, the deadline should not be.
    const bool answered = state->cv.wait_until(lock, deadline - kDeadlineLead, ready) || [&] {
      lock.unlock();
      spin_until(ready, deadline);
      lock.lock();
      return ready();
    }();
    if (!answered) {
      state->abandoned = true;
      abandoned.fetch_add(1, std::memory_order_acq_rel);
      timed_out = true;
      return Status(StatusCode::kDeadlineExceeded, "stage '" + link.name + "' did not answer within the budget");
    }
    return std::move(state->result);
  }

  void flag_low_confidence(ChainResult& result) {
    if (!confidence) return;
    const Tensor* t = result.outputs.find(confidence->output);
    if (t == nullptr || t->dim() < 1) return;
    const auto v = t->values<float>();
    const std::int64_t rows = t->size(0);
    if (rows <= 0 || v.empty()) return;
    const std::size_t per_row = v.size() / static_cast<std::size_t>(rows);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* p = v.data() + static_cast<std::size_t>(r) * per_row;
      const double top = per_row == 1 ? std::max<double>(p[0], 1.0 - p[0]) : *std::max_element(p, p + per_row);
      if (top < confidence->threshold) result.needs_review.push_back(static_cast<std::uint32_t>(r));
    }
    if (!result.needs_review.empty()) needs_review.fetch_add(result.needs_review.size(), std::memory_order_relaxed);
  }
};

}  // namespace detail

FallbackChain::FallbackChain(std::unique_ptr<detail::ChainImpl> impl) : impl_(std::move(impl)) {}
FallbackChain::~FallbackChain() = default;

Result<std::unique_ptr<FallbackChain>> FallbackChain::create(ChainOptions options) {
  if (options.stages.empty()) return invalid_argument("chain: no stages");
  if (options.input_width == 0) return invalid_argument("chain: input_width must be at least 1");
  if (options.budget.count() < 0) return invalid_argument("chain: the budget must not be negative");
  if (options.confidence &&
      (!(options.confidence->threshold > 0 && options.confidence->threshold <= 1) || options.confidence->output.empty())) {
    return invalid_argument("chain: the confidence threshold must be in (0, 1] and name an output");
  }
  auto impl = std::make_unique<detail::ChainImpl>();
  impl->executor = options.executor;
  if (impl->executor == nullptr && options.budget.count() > 0) {
    auto pool = detail::own_pool(options.max_abandoned);
    if (!pool.ok()) return pool.status().with_context("chain");
    impl->executor = std::move(pool).value();
  }
  impl->clock = options.clock ? options.clock : std::make_shared<SteadyClock>();
  impl->input_width = options.input_width;
  impl->budget = options.budget;
  impl->max_abandoned = options.max_abandoned;
  impl->confidence = options.confidence;
  impl->outputs = options.outputs;
  std::string outputs_from = impl->outputs.empty() ? "" : "the chain's options";

  for (std::size_t i = 0; i < options.stages.size(); ++i) {
    auto& s = options.stages[i];
    const std::string where = "chain stage " + std::to_string(i) + (s.name.empty() ? "" : " '" + s.name + "'");
    if (s.name.empty()) return invalid_argument(where + ": no name");
    for (const auto& l : impl->links) {
      if (l->name == s.name) return invalid_argument(where + ": the name is used twice");
    }
    if (s.stage == nullptr) return invalid_argument(where + ": no stage");
    auto link = std::make_unique<detail::Link>();
    link->name = s.name;
    try {
      link->type = s.stage->type();
      link->bounded = s.stage->bounded();
    } catch (...) {
      return internal_error(where + ": the stage threw when asked its type");
    }
    link->stage = s.stage;
    link->on_out_of_memory = s.on_out_of_memory;
    if (s.breaker) {
      auto b = CircuitBreaker::create(s.name, *s.breaker, impl->clock, options.on_breaker_change);
      if (!b.ok()) return b.status().with_context(where);
      link->breaker = std::move(b).value();
      const auto resolution = impl->clock->coarse_resolution();
      link->coarse_timing = resolution.count() > 0 && s.breaker->slow_call_duration >= 50 * resolution;
    }
    // With a budget, unbounded stages answer on the workers: ask there, which also warms
    // the worker's thread (LibTorch sets up per-thread state on a thread's first call).
    const auto ask = [&]() -> Result<std::vector<OutputSpec>> {
      try {
        return s.stage->outputs(options.input_width);
      } catch (const std::exception& e) {
        return internal_error(std::string("outputs() threw: ") + e.what());
      } catch (...) {
        return internal_error("outputs() threw a non-standard exception");
      }
    };
    auto specs = options.budget.count() > 0 && !link->bounded ? impl->run_on_executor(ask) : ask();
    if (!specs.ok()) return specs.status().with_context(where);
    if (!specs->empty()) {
      if (impl->outputs.empty()) {
        impl->outputs = *specs;
        outputs_from = "stage '" + s.name + "'";
      } else {
        // Same names and dtypes, and the same number of values per row.
        bool same = specs->size() == impl->outputs.size();
        for (std::size_t k = 0; same && k < specs->size(); ++k) {
          const OutputSpec* want = nullptr;
          for (const auto& o : impl->outputs) {
            if (o.name == (*specs)[k].name) want = &o;
          }
          same = want != nullptr && want->dtype == (*specs)[k].dtype &&
                 detail::row_numel(*want) == detail::row_numel((*specs)[k]);
        }
        if (!same) {
          return invalid_argument(where + ": its outputs (" + describe_outputs(*specs) + ") differ from those of " +
                                  outputs_from + " (" + describe_outputs(impl->outputs) + ")");
        }
      }
    }
    impl->links.push_back(std::move(link));
  }
  if (impl->outputs.empty()) {
    return invalid_argument("chain: no stage tells its outputs; give ChainOptions::outputs");
  }
  return std::unique_ptr<FallbackChain>(new FallbackChain(std::move(impl)));
}

Status FallbackChain::run(const Tensor& features, ChainResult& result, const RunOptions& options) const {
  Status s;
  try {
    s = run_unguarded(features, result, options);
  } catch (const std::bad_alloc&) {
    s = Status(StatusCode::kResourceExhausted, "out of memory");  // short: no allocation
  } catch (const std::exception& e) {
    s = internal_error(std::string("chain: ") + e.what());
  } catch (...) {
    s = internal_error("chain: a non-standard exception");
  }
  if (!s.ok()) result.outputs.clear();  // nothing of an earlier or partial answer stays
  return s;
}

Status FallbackChain::run_unguarded(const Tensor& features, ChainResult& result, const RunOptions& options) const {
  auto& impl = *impl_;
  // result.outputs is kept: a stage may write into its tensors (see Stage::run_into).
  result.served_by.clear();
  result.skipped.clear();
  result.needs_review.clear();
  if (!features.defined() || features.dim() != 2 || features.dtype() != DType::kFloat64 ||
      !features.device().is_cpu() || features.size(1) != static_cast<std::int64_t>(impl.input_width) ||
      features.size(0) < 1) {
    return invalid_argument("chain: expected a float64 host matrix of rows x " + std::to_string(impl.input_width) +
                            ", got " + (features.defined() ? features.describe() : std::string("an undefined tensor")));
  }
  const auto budget = options.budget.value_or(impl.budget);
  if (budget.count() < 0) return invalid_argument("chain: the budget must not be negative");
  const detail::SteadyTime now = std::chrono::steady_clock::now();
  // A budget that would overflow the clock (nanoseconds::max(): "no limit") is no limit.
  const bool timed = budget.count() > 0 && budget < detail::SteadyTime::max() - now;
  const detail::SteadyTime deadline =
      timed ? now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(budget) : detail::SteadyTime::max();
  Tensor owned;  // a copy the workers may keep after we return

  for (const auto& link_ptr : impl.links) {
    detail::Link& link = *link_ptr;
    auto& c = link.counters;
    const auto skip = [&](Status s) {
      detail::bump(c.fallbacks);
      result.skipped.emplace_back();
      result.skipped.back().stage = link.name;
      result.skipped.back().status = std::move(s);
    };
    const bool on_worker = timed && !link.bounded;
    if (on_worker && std::chrono::steady_clock::now() >= deadline) {
      skip(Status(StatusCode::kDeadlineExceeded, "no time left in the budget"));
      continue;
    }
    if (on_worker && impl.abandoned.load(std::memory_order_acquire) >= impl.max_abandoned) {
      detail::bump(c.rejected_by_bulkhead);
      skip(resource_exhausted(std::to_string(impl.max_abandoned) + " abandoned calls are still running (bulkhead full)"));
      continue;
    }
    if (link.breaker && !link.breaker->try_acquire()) {
      detail::bump(c.not_permitted);
      skip(Status(StatusCode::kUnavailable,
                  "circuit breaker is " + std::string(breaker_state_name(link.breaker->state()))));
      continue;
    }
    detail::bump(c.calls);
    // Call durations matter only to a breaker (slow calls); reading the clock costs.
    const auto read_clock = [&] { return link.coarse_timing ? impl.clock->coarse_now() : impl.clock->now(); };
    const auto start = link.breaker ? read_clock() : std::chrono::nanoseconds{0};
    bool timed_out = false;
    if (on_worker && !owned.defined()) {
      auto copy = features.clone();
      if (!copy.ok()) return copy.status();
      owned = std::move(copy).value();
    }
    Status answer;
    if (on_worker) {
      Result<NamedTensors> r = impl.attempt_with_deadline(link, owned, deadline, timed_out);
      if (r.ok()) result.outputs = std::move(r).value();
      else answer = std::move(r).status();
    } else {
      answer = impl.attempt_into(link, features, result.outputs);
    }
    if (link.breaker) {
      const auto duration = read_clock() - start;
      link.breaker->on_result(answer.code(), duration);
      if (duration >= link.breaker->config().slow_call_duration) detail::bump(c.slow_calls);
    }
    if (!answer.ok()) {
      detail::bump(timed_out ? c.timeouts : c.failures);
      skip(std::move(answer));
      continue;
    }
    detail::bump(c.served);
    result.served_by = link.name;
    impl.observe_after(link, features, result.outputs);
    impl.flag_low_confidence(result);
    return {};
  }
  std::string why = "every stage failed:";
  for (const auto& s : result.skipped) why += " [" + s.stage + "] " + s.status.to_string() + ";";
  why.pop_back();
  const StatusCode code = result.skipped.empty() ? StatusCode::kInternal : result.skipped.back().status.code();
  return Status(code, why);
}

const std::vector<OutputSpec>& FallbackChain::outputs() const noexcept { return impl_->outputs; }
std::size_t FallbackChain::input_width() const noexcept { return impl_->input_width; }

std::vector<std::string> FallbackChain::stage_names() const {
  std::vector<std::string> names;
  for (const auto& l : impl_->links) names.push_back(l->name);
  return names;
}

CircuitBreaker* FallbackChain::breaker(std::string_view stage) const noexcept {
  for (const auto& l : impl_->links) {
    if (l->name == stage) return l->breaker.get();
  }
  return nullptr;
}

std::vector<StageCounters> FallbackChain::counters() const {
  std::vector<StageCounters> out;
  for (const auto& l : impl_->links) {
    const auto& c = l->counters;
    StageCounters s;
    s.name = l->name;
    s.type = l->type;
    s.calls = c.calls.load();
    s.served = c.served.load();
    s.failures = c.failures.load();
    s.timeouts = c.timeouts.load();
    s.slow_calls = c.slow_calls.load();
    s.not_permitted = c.not_permitted.load();
    s.rejected_by_bulkhead = c.rejected_by_bulkhead.load();
    s.fallbacks = c.fallbacks.load();
    if (l->breaker) s.breaker = l->breaker->metrics();
    out.push_back(std::move(s));
  }
  return out;
}

std::uint64_t FallbackChain::needs_review_count() const noexcept { return impl_->needs_review.load(); }
std::size_t FallbackChain::abandoned_in_flight() const noexcept { return impl_->abandoned.load(); }

}  // namespace ember
