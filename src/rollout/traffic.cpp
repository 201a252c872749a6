// TrafficSplit: sticky weighted arms, and a shadow fed from a bounded queue on an
// executor, never waited for.
#include "ember/traffic.hpp"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "core/json_pointer.hpp"

namespace ember {

namespace detail {

namespace {

// A copy for the shadow: the record and the primary's outputs.
struct ShadowItem {
  std::size_t arm = 0;
  std::string json;
  std::vector<std::pair<std::string, std::vector<double>>> outputs;
};

constexpr std::int64_t kMaxComparedElements = 64;  // per output

}  // namespace

struct TrafficSplitImpl {
  std::vector<SplitArm> arms;
  struct Rule {
    std::vector<std::string> tokens;  // the pointer, unescaped
    std::string equals;
    std::size_t arm;
  };
  std::vector<Rule> segments;
  std::atomic<std::shared_ptr<const WeightedRouter>> router;
  std::mutex weights_mu;  // writers only
  ShadowOptions shadow;
  std::vector<char> copied_arm;  // per arm: its answers go to the shadow
  std::shared_ptr<TaskExecutor> executor;

  mutable std::mutex queue_mu;
  mutable std::condition_variable idle_cv;
  std::deque<ShadowItem> queue;
  bool draining = false;
  ShadowStats stats;
  std::map<std::string, std::pair<double, std::uint64_t>> diff_sums;  // output -> (sum, elements)

  void enqueue(std::size_t arm, std::string_view json, const Prediction& p);
  void drain();
};

// The arm of the first segment the record matches, or arms.size().
std::size_t segment_arm(const std::vector<TrafficSplitImpl::Rule>& rules, std::string_view json, std::size_t none) {
  if (json.size() > (std::size_t{1} << 20) || detail::json_too_deep(json, 64)) return none;
  const auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return none;
  for (const auto& r : rules) {
    const nlohmann::json* v = json_at(doc, r.tokens);
    if (v == nullptr || v->is_null() || v->is_object() || v->is_array()) continue;
    if ((v->is_string() ? v->get_ref<const std::string&>() : v->dump()) == r.equals) return r.arm;
  }
  return none;
}

void TrafficSplitImpl::enqueue(std::size_t arm, std::string_view json, const Prediction& p) {
  ShadowItem item;
  item.arm = arm;
  item.json.assign(json);
  item.outputs.reserve(p.outputs.size());
  for (const auto& e : p.outputs) {
    std::vector<double> values;
    const std::int64_t n = std::min(e.tensor.numel(), kMaxComparedElements);
    values.reserve(static_cast<std::size_t>(n));
    for (std::int64_t k = 0; k < n; ++k) {
      auto v = e.tensor.at(static_cast<std::size_t>(k));
      values.push_back(v.ok() ? *v : NAN);
    }
    item.outputs.emplace_back(e.name, std::move(values));
  }
  bool start = false;
  {
    std::lock_guard lock(queue_mu);
    if (queue.size() >= shadow.max_queue) {
      ++stats.dropped;
      return;
    }
    queue.push_back(std::move(item));
    ++stats.copied;
    if (!draining) start = draining = true;
  }
  if (!start) return;
  bool posted = false;
  try {
    posted = executor->post([this] { drain(); });
  } catch (...) {
    posted = false;
  }
  if (!posted) {  // refused: the copies wait for the next request to post again
    std::lock_guard lock(queue_mu);
    draining = false;
    idle_cv.notify_all();
  }
}

void TrafficSplitImpl::drain() {
  Prediction answer;
  std::deque<ShadowItem> batch;
  std::vector<ShadowComparison> comparisons;
  for (;;) {
    {
      // Everything queued is taken at once: the request threads meet this lock once
      // per batch, not once per copy.
      std::lock_guard lock(queue_mu);
      if (queue.empty()) {
        draining = false;
        idle_cv.notify_all();
        return;
      }
      batch.swap(queue);
    }
    ShadowStats delta;
    std::map<std::string, std::pair<double, std::uint64_t>> sums;
    for (const ShadowItem& item : batch) {
      Status st;
      try {
        st = shadow.deployment->predict(item.json, answer);
      } catch (...) {
        st = internal_error("the shadow threw");
      }
      if (!st.ok()) {
        ++delta.failed;
        continue;
      }
      ++delta.answered;
      ++delta.compared;
      bool differ = false;
      ShadowComparison first{item.arm, NAN, NAN};
      for (const auto& [name, primary] : item.outputs) {
        const Tensor* t = answer.outputs.find(name);
        if (t == nullptr) differ = true;
        auto& [sum, n] = sums[name];
        for (std::size_t k = 0; k < primary.size(); ++k) {
          double v = NAN;
          if (t != nullptr && static_cast<std::int64_t>(k) < t->numel()) {
            auto x = t->at(k);
            if (x.ok()) v = *x;
          }
          if (&primary == &item.outputs.front().second && k == 0) {
            first.primary = primary[0];
            first.shadow = v;
          }
          const double d = std::fabs(v - primary[k]);
          if (!(d <= shadow.tolerance)) differ = true;  // NaN on either side disagrees
          if (std::isfinite(d)) {
            sum += d;
            ++n;
          }
        }
      }
      delta.disagreed += differ;
      if (shadow.on_compare) comparisons.push_back(first);
    }
    batch.clear();
    {
      std::lock_guard lock(queue_mu);
      stats.answered += delta.answered;
      stats.failed += delta.failed;
      stats.compared += delta.compared;
      stats.disagreed += delta.disagreed;
      for (const auto& [name, sum] : sums) {
        diff_sums[name].first += sum.first;
        diff_sums[name].second += sum.second;
      }
    }
    if (!comparisons.empty()) shadow.on_compare(comparisons);
    comparisons.clear();
  }
}

}  // namespace detail

Result<std::unique_ptr<TrafficSplit>> TrafficSplit::create(std::vector<SplitArm> arms, const TrafficSplitOptions& options) {
  if (arms.empty()) return invalid_argument("traffic split: no arms");
  std::set<std::string> names;
  std::vector<double> weights;
  for (std::size_t i = 0; i < arms.size(); ++i) {
    if (!arms[i].deployment) return invalid_argument("traffic split: arm " + std::to_string(i) + " has no deployment");
    if (arms[i].name.empty() || !names.insert(arms[i].name).second) {
      return invalid_argument("traffic split: arm " + std::to_string(i) + " needs a name of its own");
    }
    weights.push_back(arms[i].weight);
  }
  auto router = WeightedRouter::create(weights);
  if (!router.ok()) return router.status().with_context("traffic split");
  auto impl = std::make_unique<detail::TrafficSplitImpl>();
  for (std::size_t i = 0; i < options.segments.size(); ++i) {
    const auto& seg = options.segments[i];
    const std::string field = "traffic split: segment " + std::to_string(i);
    if (seg.pointer.empty() || seg.pointer.front() != '/') return invalid_argument(field + ": the pointer must start with '/'");
    detail::TrafficSplitImpl::Rule rule;
    rule.equals = seg.equals;
    rule.arm = arms.size();
    for (std::size_t a = 0; a < arms.size(); ++a) {
      if (arms[a].name == seg.arm) rule.arm = a;
    }
    if (rule.arm == arms.size()) return invalid_argument(field + ": no arm named '" + seg.arm + "'");
    rule.tokens = detail::json_pointer_tokens(seg.pointer);
    impl->segments.push_back(std::move(rule));
  }
  impl->arms = std::move(arms);
  impl->router.store(std::make_shared<const WeightedRouter>(std::move(*router)));
  impl->shadow = options.shadow;
  impl->copied_arm.assign(impl->arms.size(), impl->shadow.copy_arms.empty() ? 1 : 0);
  for (const auto& name : impl->shadow.copy_arms) {
    std::size_t a = 0;
    while (a < impl->arms.size() && impl->arms[a].name != name) ++a;
    if (a == impl->arms.size()) return invalid_argument("traffic split: the shadow copies an arm named '" + name + "', which does not exist");
    impl->copied_arm[a] = 1;
  }
  if (impl->shadow.deployment) {
    impl->executor = options.executor;
    if (!impl->executor) {
      // One task drains the queue at a time; more threads may start while one is
      // returning (a pool refuses a task only when all its threads are busy).
      ThreadPoolOptions po;
      po.threads = 1;
      po.max_threads = 4;
      auto pool = ThreadPool::create(po);
      if (!pool.ok()) return pool.status();
      impl->executor = *pool;
    }
  }
  return std::unique_ptr<TrafficSplit>(new TrafficSplit(std::move(impl)));
}

TrafficSplit::TrafficSplit(std::unique_ptr<detail::TrafficSplitImpl> impl) : impl_(std::move(impl)) {}

TrafficSplit::~TrafficSplit() {
  std::unique_lock lock(impl_->queue_mu);
  impl_->idle_cv.wait(lock, [&] { return !impl_->draining; });
}

Status TrafficSplit::predict(std::string_view json, std::string_view key, Prediction& prediction, std::size_t* arm,
                             std::string_view force_arm) const {
  std::size_t chosen = 0;
  if (!force_arm.empty()) {
    chosen = impl_->arms.size();
    for (std::size_t i = 0; i < impl_->arms.size(); ++i) {
      if (impl_->arms[i].name == force_arm) chosen = i;
    }
    if (chosen == impl_->arms.size()) return not_found("traffic split: no arm named '" + std::string(force_arm) + "'");
  } else {
    chosen = impl_->segments.empty() ? impl_->arms.size()
                                     : detail::segment_arm(impl_->segments, json, impl_->arms.size());
    if (chosen == impl_->arms.size()) chosen = impl_->router.load(std::memory_order_acquire)->arm(key);
  }
  if (arm != nullptr) *arm = chosen;
  const Status st = impl_->arms[chosen].deployment->predict(json, prediction);
  if (st.ok() && impl_->shadow.deployment && impl_->copied_arm[chosen]) impl_->enqueue(chosen, json, prediction);
  return st;
}

std::size_t TrafficSplit::arm_of(std::string_view key) const { return impl_->router.load(std::memory_order_acquire)->arm(key); }

Status TrafficSplit::set_weights(std::span<const double> weights) {
  if (weights.size() != impl_->arms.size()) {
    return invalid_argument("traffic split: " + std::to_string(weights.size()) + " weights for " +
                            std::to_string(impl_->arms.size()) + " arms");
  }
  auto router = WeightedRouter::create(weights);
  if (!router.ok()) return router.status().with_context("traffic split");
  std::lock_guard lock(impl_->weights_mu);
  impl_->router.store(std::make_shared<const WeightedRouter>(std::move(*router)), std::memory_order_release);
  return {};
}

std::vector<double> TrafficSplit::weights() const { return impl_->router.load(std::memory_order_acquire)->weights(); }

const std::vector<SplitArm>& TrafficSplit::arms() const noexcept { return impl_->arms; }

ShadowStats TrafficSplit::shadow_stats() const {
  std::lock_guard lock(impl_->queue_mu);
  ShadowStats s = impl_->stats;
  for (const auto& [name, sum] : impl_->diff_sums) {
    s.mean_abs_diff[name] = sum.second ? sum.first / static_cast<double>(sum.second) : 0.0;
  }
  return s;
}

bool TrafficSplit::wait_for_shadow(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->queue_mu);
  if (!impl_->draining && !impl_->queue.empty()) {
    // Copies left when the executor refused their drain: answered here, not waited for.
    impl_->draining = true;
    lock.unlock();
    impl_->drain();
    lock.lock();
  }
  return impl_->idle_cv.wait_for(lock, timeout, [&] { return !impl_->draining && impl_->queue.empty(); });
}

}  // namespace ember
