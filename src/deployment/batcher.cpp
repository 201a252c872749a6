#include "deployment/batcher.hpp"

#include <algorithm>
#include <system_error>

namespace ember::detail {

namespace {

// How long after the last request the batcher keeps polling rather than sleeping.
constexpr std::chrono::milliseconds kPollWhileBusy{100};

bool before(const BatchItem& a, const BatchItem& b) {
  if (a.priority != b.priority) return a.priority < b.priority;
  if (a.deadline != b.deadline) return a.deadline < b.deadline;
  return a.seq < b.seq;
}

void atomic_max(std::atomic<std::uint64_t>& target, std::uint64_t value) {
  std::uint64_t seen = target.load(std::memory_order_relaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

}  // namespace

ServingCounters ServingStats::snapshot() const {
  ServingCounters c;
  c.requests = requests.load();
  c.batches = batches.load(std::memory_order_relaxed);
  c.batched_rows = batched_rows.load(std::memory_order_relaxed);
  c.refused_queue_full = refused_queue_full.load(std::memory_order_relaxed);
  c.refused_deadline = refused_deadline.load(std::memory_order_relaxed);
  c.timed_out = timed_out.load(std::memory_order_relaxed);
  c.queue_time_ns = queue_time_ns.load(std::memory_order_relaxed);
  c.max_queue_time_ns = max_queue_time_ns.load(std::memory_order_relaxed);
  return c;
}

Result<std::unique_ptr<Batcher>> Batcher::start(const BatchingOptions& options, ServingStats& stats,
                                                std::shared_ptr<Metrics> metrics, std::string name) {
  if (options.max_batch_rows == 0) return invalid_argument("batching: max_batch_rows must be at least 1");
  if (options.max_queue_rows == 0) return invalid_argument("batching: max_queue_rows must be at least 1");
  for (std::size_t n : options.preferred_batch_rows) {
    if (n == 0 || n > options.max_batch_rows) {
      return invalid_argument("batching: preferred batch sizes must be between 1 and max_batch_rows");
    }
  }
  std::unique_ptr<Batcher> b(new Batcher(options, stats, std::move(metrics), std::move(name)));
  try {
    b->thread_ = std::thread([raw = b.get()] { raw->loop(); });
  } catch (const std::system_error& e) {
    return resource_exhausted(std::string("batching: the batcher thread cannot start: ") + e.what());
  }
  return b;
}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Batcher::take_batch(std::vector<BatchItem>& batch, std::size_t take) {
  std::sort(queue_.begin(), queue_.end(), before);
  const auto model = queue_.front().model;
  batch.clear();
  for (auto it = queue_.begin(); it != queue_.end() && batch.size() < take;) {
    if (it->model == model) {
      batch.push_back(std::move(*it));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Batcher::enqueue(BatchItem& item, bool caller_runs) {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.size() >= options_.max_queue_rows) {
    stats_.refused_queue_full.fetch_add(1, std::memory_order_relaxed);
    return resource_exhausted("the batch queue holds " + std::to_string(queue_.size()) + " rows, its limit");
  }
  if (item.deadline != SteadyTime::max()) {
    // The batches ahead of it, and its own: refuse now what cannot be answered in time.
    const std::int64_t per_batch = batch_ns_.load(std::memory_order_relaxed);
    const std::int64_t batches = 1 + static_cast<std::int64_t>(queue_.size() / options_.max_batch_rows);
    const auto estimate = std::chrono::nanoseconds(per_batch * batches);
    if (item.arrival + estimate > item.deadline || std::chrono::steady_clock::now() >= item.deadline) {
      stats_.refused_deadline.fetch_add(1, std::memory_order_relaxed);
      return Status(StatusCode::kDeadlineExceeded,
                    "the deadline cannot be met: about " + std::to_string(estimate.count() / 1000) +
                        " us of batches are ahead of this request");
    }
  }
  last_arrival_ = item.arrival;
  queue_.push_back(std::move(item));
  const std::size_t n = queue_.size();
  if (caller_runs && n >= options_.max_batch_rows) {
    std::vector<BatchItem> batch;
    take_batch(batch, options_.max_batch_rows);
    lock.unlock();
    run(batch, false);
    return {};
  }
  // Wake the batcher only when it has a reason to look: a complete batch, or a first
  // request while it sleeps without a timeout. While requests keep coming it polls
  // every max_queue_delay instead: a wake-up is a system call (tens of microseconds on
  // a VM), which a game's frame thread should not pay.
  const auto& pref = options_.preferred_batch_rows;
  const bool complete = n >= options_.max_batch_rows || std::find(pref.begin(), pref.end(), n) != pref.end();
  const bool wake = waiting_ && (complete || (n == 1 && deep_sleep_));
  lock.unlock();
  if (wake) cv_.notify_one();
  return {};
}

void Batcher::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<BatchItem> batch;
  std::vector<BatchItem> expired;
  for (;;) {
    if (queue_.empty()) {
      if (stop_) return;
      waiting_ = true;
      if (std::chrono::steady_clock::now() - last_arrival_ < kPollWhileBusy) {
        cv_.wait_for(lock, options_.max_queue_delay);
      } else {
        deep_sleep_ = true;
        cv_.wait(lock);
        deep_sleep_ = false;
      }
      waiting_ = false;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    // Requests whose deadline passed while they waited.
    auto late = std::partition(queue_.begin(), queue_.end(), [&](const BatchItem& i) { return i.deadline > now; });
    if (late != queue_.end()) {
      expired.assign(std::make_move_iterator(late), std::make_move_iterator(queue_.end()));
      queue_.erase(late, queue_.end());
      lock.unlock();
      stats_.timed_out.fetch_add(expired.size(), std::memory_order_relaxed);
      if (options_.timeout_action == TimeoutAction::kFallback) {
        // One pass per model version among them.
        while (!expired.empty()) {
          auto model = expired.front().model;
          auto split = std::stable_partition(expired.begin(), expired.end(),
                                             [&](const BatchItem& i) { return i.model == model; });
          std::vector<BatchItem> group(std::make_move_iterator(expired.begin()), std::make_move_iterator(split));
          expired.erase(expired.begin(), split);
          run(group, true);
        }
      } else {
        for (auto& i : expired) {
          Answer a;
          a.status = Status(StatusCode::kDeadlineExceeded, "the deadline passed while the request waited for a batch");
          a.queue_time = now - i.arrival;
          i.complete(std::move(a));
        }
      }
      expired.clear();
      lock.lock();
      continue;
    }
    const std::size_t n = queue_.size();
    const auto& pref = options_.preferred_batch_rows;
    auto oldest = queue_.front().arrival;
    auto earliest_deadline = SteadyTime::max();
    for (const auto& i : queue_) {
      oldest = std::min(oldest, i.arrival);
      earliest_deadline = std::min(earliest_deadline, i.deadline);
    }
    const auto due = oldest + options_.max_queue_delay;
    const bool full = n >= options_.max_batch_rows || std::find(pref.begin(), pref.end(), n) != pref.end();
    if (!full && !stop_ && now < due) {
      waiting_ = true;
      cv_.wait_until(lock, std::min(due, earliest_deadline));
      waiting_ = false;
      continue;
    }
    // Highest priority, then earliest deadline, then arrival; one model version per pass.
    std::size_t take = std::min(n, options_.max_batch_rows);
    if (!full && !pref.empty()) {
      std::size_t best = 0;
      for (std::size_t p : pref) {
        if (p <= take) best = std::max(best, p);
      }
      if (best > 0) take = best;
    }
    take_batch(batch, take);
    lock.unlock();
    run(batch, false);
    lock.lock();
  }
}

void Batcher::run(std::vector<BatchItem>& items, bool fallback) {
  if (items.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  const Model& model = *items.front().model;
  const std::size_t width = items.front().row.size();
  std::vector<double> inputs;
  inputs.reserve(items.size() * width);
  for (const auto& i : items) inputs.insert(inputs.end(), i.row.begin(), i.row.end());
  BatchPrediction bp;
  PredictOptions po;
  if (fallback) po.budget = std::chrono::nanoseconds(1);  // no time for the model: later stages answer
  auto tensor = Tensor::from_values(inputs, {static_cast<std::int64_t>(items.size()), static_cast<std::int64_t>(width)});
  const Status status = tensor.ok() ? model.execute(*tensor, bp, po) : tensor.status();
  const auto end = std::chrono::steady_clock::now();
  if (!fallback) {
    const std::int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
    const std::int64_t avg = batch_ns_.load(std::memory_order_relaxed);
    batch_ns_.store(avg == 0 ? took : (avg * 7 + took) / 8, std::memory_order_relaxed);
    stats_.batches.fetch_add(1, std::memory_order_relaxed);
    stats_.batched_rows.fetch_add(items.size(), std::memory_order_relaxed);
    if (metrics_) {
      std::vector<std::chrono::nanoseconds> waits;
      waits.reserve(items.size());
      for (const auto& i : items) waits.push_back(start - i.arrival);
      metrics_->record_batch(name_, waits);
    }
  }
  for (std::size_t r = 0; r < items.size(); ++r) {
    BatchItem& item = items[r];
    Answer a;
    a.queue_time = start - item.arrival;
    a.batch_rows = items.size();
    const auto queued = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(a.queue_time).count());
    stats_.queue_time_ns.fetch_add(queued, std::memory_order_relaxed);
    atomic_max(stats_.max_queue_time_ns, queued);
    Prediction& p = a.prediction;
    p.model_name = model.name();
    p.model_version = model.version();
    p.request_id = item.seq;
    p.latency = end - item.arrival;
    if (!status.ok() || r >= bp.rows.size()) {
      a.status = status.ok() ? internal_error("the batch answered fewer rows than it was given") : status;
    } else {
      a.status = bp.rows[r].status;
      p.served_by = bp.rows[r].served_by;
      p.skipped = bp.skipped;
      auto slice = bp.outputs.slice_rows(static_cast<std::int64_t>(r), static_cast<std::int64_t>(r) + 1);
      if (slice.ok()) p.outputs = std::move(*slice);
      else if (a.status.ok()) a.status = slice.status();
      for (auto row : bp.needs_review) {
        if (row == r) p.needs_review.push_back(0);
      }
    }
    item.complete(std::move(a));
  }
}

}  // namespace ember::detail
