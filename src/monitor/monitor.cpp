// Monitor: per-thread window buffers on the request path; windows evaluated against the
// reference off it; alerts, outcomes and the prediction log.
#include "ember/monitor.hpp"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <atomic>
#include <cmath>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/striped.hpp"
#include "ember/metrics.hpp"
#include "monitor/monitor_internal.hpp"
#include "threads/spin.hpp"

extern char** environ;

namespace ember {

namespace detail {

namespace {

constexpr std::uint64_t kChunk = 32;  // rows a thread buffers before it adds them to the window's count
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Held briefly: by its own thread on each request, by the closing thread to swap the
// buffer out. Yields after a short spin, so that a holder that lost its core gets it back.
class SpinLock {
 public:
  void lock() noexcept {
    for (int i = 0; flag_.test_and_set(std::memory_order_acquire); ++i) {
      if (i < 64) cpu_relax();
      else std::this_thread::yield();
    }
  }
  void unlock() noexcept { flag_.clear(std::memory_order_release); }

 private:
  std::atomic_flag flag_ = ATOMIC_FLAG_INIT;
};

// Index of `name` in a small table of names, added when new.
std::uint32_t intern(std::vector<std::string>& names, std::string_view name) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return static_cast<std::uint32_t>(i);
  }
  names.emplace_back(name);
  return static_cast<std::uint32_t>(names.size() - 1);
}

// What one window holds, in the order the requests came on one thread.
struct Buffer {
  std::vector<double> features;  // rows x features
  std::vector<double> outputs;   // rows x outputs
  std::vector<double> confidence;
  std::vector<std::int64_t> latency_ns;
  std::vector<std::uint32_t> served, version;  // into the names below
  std::vector<std::uint8_t> fallback;
  std::vector<std::string> served_names, version_names;
  std::uint64_t rows = 0;
};

struct Pending {
  std::string version;
  double prediction = 0;
  std::int64_t at_ns = 0;
};

struct alignas(64) Stripe {
  SpinLock lock;
  Buffer buffer;
  std::uint64_t unreported = 0;  // rows not yet added to the window count
  // Outcomes: predictions waiting for ground truth, oldest first.
  std::mutex pending_mu;
  std::unordered_map<std::uint64_t, Pending> pending;
  std::deque<std::pair<std::int64_t, std::uint64_t>> pending_order;
};

double confidence_of(const Tensor& t, std::int64_t row, std::int64_t per_row) {
  if (per_row == 1) {
    auto v = t.at(static_cast<std::size_t>(row));
    if (!v.ok()) return kNaN;
    return *v >= 0 && *v <= 1 ? std::max(*v, 1 - *v) : kNaN;
  }
  double best = kNaN;
  for (std::int64_t k = 0; k < per_row; ++k) {
    auto v = t.at(static_cast<std::size_t>(row * per_row + k));
    if (v.ok() && !(best >= *v)) best = *v;
  }
  return best;
}

}  // namespace

struct MonitorImpl {
  explicit MonitorImpl(const Schema& s) : schema(s) {}
  Schema schema;
  MonitorOptions opt;
  std::shared_ptr<const Clock> clock;
  struct Feature {
    std::size_t index;
    ColumnKind kind;
    const FeatureSpec* spec;
  };
  std::vector<Feature> features;
  struct OutputRef {
    std::string column;  // "output" or "output[2]"
    std::string tensor;
    std::size_t element;
  };
  std::vector<OutputRef> outputs;
  std::string confidence_output = "output";

  std::array<Stripe, kStripes> stripes;
  std::atomic<std::uint64_t> window_count{0};
  std::atomic<std::int64_t> window_start_ns{0};
  std::atomic<bool> closing{false};
  StripedCounter requests;

  mutable std::mutex eval_mu;  // one evaluation at a time; guards what follows
  std::deque<WindowReport> windows;
  std::uint64_t next_index = 0;
  std::map<std::string, Alert> active;
  std::map<std::string, bool> retrained;
  std::map<std::string, std::vector<std::uint64_t>> latency_hist;
  std::uint64_t windows_total = 0;

  mutable std::mutex outcome_mu;
  struct VersionOutcomes {
    std::uint64_t joined = 0;
    std::deque<std::pair<double, double>> kept;  // (prediction, outcome)
  };
  std::map<std::string, VersionOutcomes> outcome_by_version;
  std::atomic<std::uint64_t> outcomes_joined{0}, outcomes_unknown{0}, expired{0};

  std::unique_ptr<PredictionLog> log;

  // Waits for posted evaluations on destruction.
  std::mutex posted_mu;
  std::condition_variable posted_cv;
  std::size_t posted = 0;

  void append(const RequestEvent& e);
  void remember_prediction(const RequestEvent& e);
  void maybe_close(bool force_time_check);
  std::vector<Buffer> swap_out();
  static Buffer merge(std::vector<Buffer> parts);
  void evaluate(Buffer window, std::int64_t start_ns, std::int64_t end_ns);
  void raise(std::vector<Alert> found, std::int64_t now_ns, WindowReport& report);
  std::vector<OutcomeStats> outcome_stats() const;
};

void MonitorImpl::append(const RequestEvent& e) {
  const FeatureRow* row = e.features;
  const FeatureBatch* batch = e.batch_features;
  if (e.result == nullptr || !e.status.ok()) return;
  // Rows: the record's, the batch's, or (execute() of a batcher: no features) the model input's.
  std::size_t rows = 0;
  if (row != nullptr) rows = 1;
  else if (batch != nullptr) rows = batch->rows;
  else if (e.model_input != nullptr && e.model_input->dim() > 0) rows = static_cast<std::size_t>(e.model_input->size(0));
  if (rows == 0) return;
  Stripe& s = stripes[thread_stripe()];
  s.lock.lock();
  Buffer& b = s.buffer;
  for (std::size_t r = 0; r < rows; ++r) {
    if (row == nullptr && batch == nullptr) {
      b.features.insert(b.features.end(), features.size(), kNaN);
      continue;
    }
    const double* values = row ? row->values.data() : batch->values.data() + r * batch->cols;
    for (const auto& f : features) b.features.push_back(values[f.index]);
  }
  const NamedTensors& outs = e.result->outputs;
  for (std::size_t r = 0; r < rows; ++r) {
    for (const auto& o : outputs) {
      const Tensor* t = outs.find(o.tensor);
      const std::int64_t per_row = t && t->numel() > 0 ? t->numel() / static_cast<std::int64_t>(rows) : 0;
      double v = kNaN;
      if (t && static_cast<std::int64_t>(o.element) < per_row) {
        auto x = t->at(static_cast<std::size_t>(static_cast<std::int64_t>(r) * per_row) + o.element);
        if (x.ok()) v = *x;
      }
      b.outputs.push_back(v);
    }
  }
  const Tensor* ct = outs.find(confidence_output);
  const std::int64_t per_row = ct && ct->numel() > 0 ? ct->numel() / static_cast<std::int64_t>(rows) : 0;
  const std::uint32_t served = intern(b.served_names, e.result->served_by);
  const std::uint32_t version = intern(b.version_names, e.model_version);
  const std::uint8_t fallback = e.result->skipped.empty() ? 0 : 1;
  for (std::size_t r = 0; r < rows; ++r) {
    b.confidence.push_back(per_row > 0 ? confidence_of(*ct, static_cast<std::int64_t>(r), per_row) : kNaN);
    b.latency_ns.push_back(e.latency.count());
    b.served.push_back(served);
    b.version.push_back(version);
    b.fallback.push_back(fallback);
  }
  b.rows += rows;
  s.unreported += rows;
  const bool report = s.unreported >= kChunk;
  std::uint64_t add = 0;
  if (report) {
    add = s.unreported;
    s.unreported = 0;
  }
  s.lock.unlock();
  if (report) {
    window_count.fetch_add(add, std::memory_order_relaxed);
    maybe_close(true);
  }
}

void MonitorImpl::maybe_close(bool time_check) {
  const bool by_rows = opt.window_rows > 0 && window_count.load(std::memory_order_relaxed) >= opt.window_rows;
  bool by_time = false;
  std::int64_t now = 0;
  if (!by_rows && time_check && opt.window_time.count() > 0) {
    now = clock->now().count();
    by_time = now - window_start_ns.load(std::memory_order_relaxed) >=
              std::chrono::duration_cast<std::chrono::nanoseconds>(opt.window_time).count();
  }
  if (!by_rows && !by_time) return;
  if (closing.exchange(true, std::memory_order_acquire)) return;
  if (now == 0) now = clock->now().count();
  const std::int64_t start = window_start_ns.exchange(now, std::memory_order_relaxed);
  std::vector<Buffer> parts = swap_out();
  window_count.store(0, std::memory_order_relaxed);
  closing.store(false, std::memory_order_release);
  if (parts.empty()) return;
  if (opt.executor) {
    {
      std::lock_guard lock(posted_mu);
      ++posted;
    }
    // Merged and evaluated there: the request thread only swapped the buffers out.
    auto task = [this, w = std::make_shared<std::vector<Buffer>>(std::move(parts)), start, now]() mutable {
      evaluate(merge(std::move(*w)), start, now);
      std::lock_guard lock(posted_mu);
      if (--posted == 0) posted_cv.notify_all();
    };
    bool accepted = false;
    try {
      accepted = opt.executor->post(task);
    } catch (...) {
      accepted = false;
    }
    if (!accepted) task();
    return;
  }
  evaluate(merge(std::move(parts)), start, now);
}

std::vector<Buffer> MonitorImpl::swap_out() {
  std::vector<Buffer> parts;
  for (auto& s : stripes) {
    // Swapped out under the lock: the request thread waits for no copy.
    Buffer b;
    s.lock.lock();
    std::swap(b.features, s.buffer.features);
    std::swap(b.outputs, s.buffer.outputs);
    std::swap(b.confidence, s.buffer.confidence);
    std::swap(b.latency_ns, s.buffer.latency_ns);
    std::swap(b.served, s.buffer.served);
    std::swap(b.version, s.buffer.version);
    std::swap(b.fallback, s.buffer.fallback);
    b.rows = s.buffer.rows;
    if (b.rows > 0) {
      b.served_names = s.buffer.served_names;
      b.version_names = s.buffer.version_names;
    }
    s.buffer.rows = 0;
    s.unreported = 0;
    s.lock.unlock();
    if (b.rows > 0) parts.push_back(std::move(b));
  }
  return parts;
}

Buffer MonitorImpl::merge(std::vector<Buffer> parts) {
  if (parts.size() == 1) return std::move(parts.front());
  Buffer out;
  for (auto& b : parts) {
    out.features.insert(out.features.end(), b.features.begin(), b.features.end());
    out.outputs.insert(out.outputs.end(), b.outputs.begin(), b.outputs.end());
    out.confidence.insert(out.confidence.end(), b.confidence.begin(), b.confidence.end());
    out.latency_ns.insert(out.latency_ns.end(), b.latency_ns.begin(), b.latency_ns.end());
    out.fallback.insert(out.fallback.end(), b.fallback.begin(), b.fallback.end());
    for (auto i : b.served) out.served.push_back(intern(out.served_names, b.served_names[i]));
    for (auto i : b.version) out.version.push_back(intern(out.version_names, b.version_names[i]));
    out.rows += b.rows;
  }
  return out;
}

void MonitorImpl::evaluate(Buffer w, std::int64_t start_ns, std::int64_t end_ns) {
  WindowReport report;
  report.rows = w.rows;
  report.start = std::chrono::nanoseconds(start_ns);
  report.end = std::chrono::nanoseconds(end_ns);
  const std::size_t nf = features.size(), no = outputs.size();
  if (opt.reference) {
    Table table;
    table.rows = w.rows;
    for (std::size_t f = 0; f < nf; ++f) {
      Column c{features[f].spec->name, features[f].kind, {}, {}};
      for (std::size_t r = 0; r < w.rows; ++r) {
        const double v = w.features[r * nf + f];
        if (c.kind == ColumnKind::kNumerical) {
          c.numbers.push_back(v);
        } else if (std::isnan(v)) {
          c.labels.emplace_back(std::nullopt);
        } else if (features[f].spec->kind == FeatureKind::kBoolean) {
          c.labels.emplace_back(v != 0 ? "true" : "false");
        } else {
          const auto k = static_cast<std::size_t>(v);
          const auto& cats = features[f].spec->categories;
          c.labels.emplace_back(k < cats.size() ? std::optional<std::string>(cats[k]) : std::nullopt);
        }
      }
      table.columns.push_back(std::move(c));
    }
    for (std::size_t o = 0; o < no; ++o) {
      Column c{outputs[o].column, ColumnKind::kNumerical, {}, {}};
      for (std::size_t r = 0; r < w.rows; ++r) c.numbers.push_back(w.outputs[r * no + o]);
      table.columns.push_back(std::move(c));
    }
    auto drift = compare(*opt.reference, table, opt.drift);
    if (drift.ok()) report.drift = std::move(*drift);
  }
  double conf_sum = 0;
  std::size_t conf_n = 0, fallbacks = 0;
  for (std::size_t r = 0; r < w.rows; ++r) {
    if (!std::isnan(w.confidence[r])) {
      conf_sum += w.confidence[r];
      ++conf_n;
    }
    fallbacks += w.fallback[r];
    ++report.served_by[w.served_names[w.served[r]]];
    ++report.versions[w.version_names[w.version[r]]];
  }
  report.mean_confidence = conf_n ? conf_sum / static_cast<double>(conf_n) : kNaN;
  report.fallback_rate = static_cast<double>(fallbacks) / static_cast<double>(w.rows);
  std::vector<std::int64_t> lat = w.latency_ns;
  const auto quantile = [&](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(lat.size() - 1));
    std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
    return std::chrono::nanoseconds(lat[k]);
  };
  report.latency_p50 = quantile(0.5);
  report.latency_p95 = quantile(0.95);

  // Conditions that hold in this window.
  std::vector<Alert> found;
  const auto& rules = opt.alerts;
  const auto add = [&](std::string kind, std::string subject, double value, double threshold) {
    found.push_back(Alert{std::move(kind), opt.model, std::move(subject), value, threshold, {}, false});
  };
  if (rules.drift && report.drift) {
    for (const auto& c : report.drift->features) {
      if (c.drift) add("feature_drift", c.name, c.p_value.value_or(c.statistic), c.threshold);
    }
    if (report.drift->dataset_drift) add("dataset_drift", "", report.drift->drifted_share, report.drift->drift_share);
    for (const auto& c : report.drift->outputs) {
      if (c.drift) add("prediction_drift", c.name, c.p_value.value_or(c.statistic), c.threshold);
    }
  }
  if (rules.min_confidence && conf_n > 0 && report.mean_confidence < *rules.min_confidence) {
    add("confidence", "", report.mean_confidence, *rules.min_confidence);
  }
  if (rules.max_fallback_rate && report.fallback_rate > *rules.max_fallback_rate) {
    add("fallback_rate", "", report.fallback_rate, *rules.max_fallback_rate);
  }
  if (rules.max_latency_p95 && report.latency_p95 > *rules.max_latency_p95) {
    add("latency", "", static_cast<double>(report.latency_p95.count()) * 1e-9,
        static_cast<double>(rules.max_latency_p95->count()) * 1e-9);
  }
  for (const auto& o : outcome_stats()) {
    if (o.window < rules.min_outcomes) continue;
    if (rules.min_accuracy && o.accuracy && *o.accuracy < *rules.min_accuracy) add("accuracy", o.version, *o.accuracy, *rules.min_accuracy);
    if (rules.min_auc && o.auc && *o.auc < *rules.min_auc) add("auc", o.version, *o.auc, *rules.min_auc);
    if (rules.max_mae && o.mae > *rules.max_mae) add("mae", o.version, o.mae, *rules.max_mae);
  }

  std::lock_guard lock(eval_mu);
  report.index = next_index++;
  ++windows_total;
  auto& hist_total = latency_hist;
  const auto bounds = latency_buckets();
  for (std::size_t r = 0; r < w.rows; ++r) {
    auto& h = hist_total[w.version_names[w.version[r]]];
    if (h.empty()) h.assign(bounds.size() + 1, 0);
    const double sec = static_cast<double>(w.latency_ns[r]) * 1e-9;
    ++h[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), sec) - bounds.begin())];
  }
  raise(std::move(found), end_ns, report);
  windows.push_back(std::move(report));
  while (windows.size() > std::max<std::size_t>(opt.keep_windows, 1)) windows.pop_front();
}

namespace {

void audit(const std::shared_ptr<Registry>& registry, std::string_view event, const Alert& a) {
  if (!registry) return;
  const nlohmann::json detail = {{"kind", a.kind}, {"subject", a.subject},
                                 {"value", std::isfinite(a.value) ? nlohmann::json(a.value) : nlohmann::json()},
                                 {"threshold", a.threshold}, {"persistent", a.persistent}};
  (void)registry->record_event("monitor", event, a.model.empty() ? "model" : a.model, detail.dump());
}

void run_command(const std::string& command, const Alert& a) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back("EMBER_MODEL=" + a.model);
  env_strings.push_back("EMBER_ALERT_KIND=" + a.kind);
  env_strings.push_back("EMBER_ALERT_SUBJECT=" + a.subject);
  env_strings.push_back("EMBER_ALERT_VALUE=" + nlohmann::json(a.value).dump());
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cmd = command;
  char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, envp.data()) == 0) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace

void MonitorImpl::raise(std::vector<Alert> found, std::int64_t now_ns, WindowReport& report) {
  std::map<std::string, Alert> now_active;
  for (auto& a : found) {
    const std::string key = a.kind + "/" + a.subject;
    auto it = active.find(key);
    if (it == active.end()) {
      a.since = std::chrono::nanoseconds(now_ns);
      report.alerts.push_back(a);
      if (opt.on_alert) {
        try {
          opt.on_alert(a);
        } catch (...) {
        }
      }
      audit(opt.registry, "monitor_alert", a);
    } else {
      a.since = it->second.since;
    }
    const bool lasted = opt.retrain_after.count() > 0 &&
                        std::chrono::nanoseconds(now_ns) - a.since >= opt.retrain_after && !retrained[key];
    if (lasted) {
      retrained[key] = true;
      Alert p = a;
      p.persistent = true;
      if (opt.on_alert) {
        try {
          opt.on_alert(p);
        } catch (...) {
        }
      }
      if (opt.on_retrain) {
        try {
          opt.on_retrain(p);
        } catch (...) {
        }
      }
      if (!opt.retrain_command.empty()) run_command(opt.retrain_command, p);
      audit(opt.registry, "monitor_retrain", p);
    }
    now_active[key] = std::move(a);
  }
  for (auto it = retrained.begin(); it != retrained.end();) {
    it = now_active.contains(it->first) ? std::next(it) : retrained.erase(it);
  }
  active = std::move(now_active);
}

void MonitorImpl::remember_prediction(const RequestEvent& e) {
  if (!opt.outcomes.enabled || e.features == nullptr || e.result == nullptr || !e.status.ok()) return;
  const Tensor* t = e.result->outputs.find(opt.outcomes.output);
  if (t == nullptr) return;
  auto v = t->at(0);
  if (!v.ok()) return;
  const std::int64_t now = clock->coarse_now().count();
  const std::int64_t ttl = std::chrono::duration_cast<std::chrono::nanoseconds>(opt.outcomes.ttl).count();
  const std::size_t cap = std::max<std::size_t>(opt.outcomes.max_pending / kStripes, 1);
  Stripe& s = stripes[thread_stripe()];
  std::lock_guard lock(s.pending_mu);
  while (!s.pending_order.empty() && (s.pending_order.front().first < now - ttl || s.pending.size() >= cap)) {
    if (s.pending.erase(s.pending_order.front().second) > 0) expired.fetch_add(1, std::memory_order_relaxed);
    s.pending_order.pop_front();
  }
  s.pending[e.request_id] = Pending{std::string(e.model_version), *v, now};
  s.pending_order.emplace_back(now, e.request_id);
}

std::vector<OutcomeStats> MonitorImpl::outcome_stats() const {
  std::vector<OutcomeStats> out;
  std::lock_guard lock(outcome_mu);
  for (const auto& [version, vo] : outcome_by_version) {
    const std::vector<std::pair<double, double>> pairs(vo.kept.begin(), vo.kept.end());
    out.push_back(ember::outcome_stats(version, pairs, opt.outcomes.positive_threshold));
    out.back().joined = vo.joined;
  }
  return out;
}

}  // namespace detail

Result<std::shared_ptr<Monitor>> Monitor::create(const Schema& schema, MonitorOptions options) {
  if (options.window_rows == 0 && options.window_time.count() <= 0) {
    return invalid_argument("monitor: a window needs window_rows or window_time");
  }
  if (!(options.log.sample_rate >= 0 && options.log.sample_rate <= 1)) {
    return invalid_argument("monitor: log.sample_rate must be in [0, 1]");
  }
  auto impl = std::make_unique<detail::MonitorImpl>(schema);
  impl->clock = options.clock ? options.clock : std::make_shared<SteadyClock>();
  const auto& specs = impl->schema.features();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto kind = column_kind(specs[i].kind);
    if (!kind) continue;
    if (options.reference && options.reference->find(specs[i].name) == nullptr) continue;
    impl->features.push_back({i, *kind, &specs[i]});
  }
  if (options.reference) {
    if (impl->features.empty()) return invalid_argument("monitor: the reference statistics have none of the schema's features");
    for (const auto& o : options.reference->outputs) {
      std::string tensor = o.name;
      std::size_t element = 0;
      const auto br = o.name.find('[');
      if (br != std::string::npos && o.name.back() == ']') {
        tensor = o.name.substr(0, br);
        element = static_cast<std::size_t>(std::strtoull(o.name.c_str() + br + 1, nullptr, 10));
      }
      impl->outputs.push_back({o.name, tensor, element});
    }
    if (!impl->outputs.empty()) impl->confidence_output = impl->outputs.front().tensor;
  }
  if (!options.log.path.empty()) {
    auto log = detail::PredictionLog::open(options.log, impl->schema, options.model);
    if (!log.ok()) return log.status();
    impl->log = std::move(*log);
  }
  impl->opt = std::move(options);
  impl->window_start_ns.store(impl->clock->now().count());
  return std::shared_ptr<Monitor>(new Monitor(std::move(impl)));
}

Monitor::Monitor(std::unique_ptr<detail::MonitorImpl> impl) : impl_(std::move(impl)) {}

Monitor::~Monitor() { (void)flush(); }  // waits for windows on the executor too

void Monitor::on_request(const RequestEvent& event) {
  auto& m = *impl_;
  m.requests.add();
  m.append(event);
  m.remember_prediction(event);
  if (m.log) m.log->consider(event);
}

Status Monitor::record_outcome(std::uint64_t request_id, double outcome) {
  auto& m = *impl_;
  if (!m.opt.outcomes.enabled) return failed_precondition("monitor: outcomes are off (MonitorOptions::outcomes.enabled)");
  if (!std::isfinite(outcome)) return invalid_argument("monitor: an outcome must be a finite number");
  std::optional<detail::Pending> found;
  const std::int64_t now = m.clock->coarse_now().count();
  const std::int64_t ttl = std::chrono::duration_cast<std::chrono::nanoseconds>(m.opt.outcomes.ttl).count();
  for (auto& s : m.stripes) {
    std::lock_guard lock(s.pending_mu);
    auto it = s.pending.find(request_id);
    if (it == s.pending.end()) continue;
    if (it->second.at_ns >= now - ttl) found = std::move(it->second);
    s.pending.erase(it);
    break;
  }
  if (!found) {
    m.outcomes_unknown.fetch_add(1, std::memory_order_relaxed);
    return not_found("monitor: no prediction waits for an outcome with request id " + std::to_string(request_id) +
                     " (unknown, expired or already joined)");
  }
  std::lock_guard lock(m.outcome_mu);
  auto& vo = m.outcome_by_version[found->version];
  ++vo.joined;
  vo.kept.emplace_back(found->prediction, outcome);
  while (vo.kept.size() > std::max<std::size_t>(m.opt.outcomes.window, 1)) vo.kept.pop_front();
  m.outcomes_joined.fetch_add(1, std::memory_order_relaxed);
  return {};
}

Status Monitor::flush() {
  auto& m = *impl_;
  while (m.closing.exchange(true, std::memory_order_acquire)) detail::cpu_relax();
  const std::int64_t now = m.clock->now().count();
  const std::int64_t start = m.window_start_ns.exchange(now, std::memory_order_relaxed);
  auto parts = m.swap_out();
  m.window_count.store(0, std::memory_order_relaxed);
  m.closing.store(false, std::memory_order_release);
  if (!parts.empty()) m.evaluate(detail::MonitorImpl::merge(std::move(parts)), start, now);
  {
    // Windows closed earlier and still being evaluated on the executor are finished too:
    // after flush(), windows() holds every row seen before it.
    std::unique_lock lock(m.posted_mu);
    m.posted_cv.wait(lock, [&] { return m.posted == 0; });
  }
  return m.log ? m.log->flush() : Status{};
}

void Monitor::poll() { impl_->maybe_close(true); }

std::vector<WindowReport> Monitor::windows() const {
  std::lock_guard lock(impl_->eval_mu);
  return {impl_->windows.begin(), impl_->windows.end()};
}

std::vector<OutcomeStats> Monitor::outcomes() const { return impl_->outcome_stats(); }

std::vector<Alert> Monitor::active_alerts() const {
  std::lock_guard lock(impl_->eval_mu);
  std::vector<Alert> out;
  for (const auto& [key, a] : impl_->active) out.push_back(a);
  return out;
}

MonitorCounters Monitor::counters() const {
  const auto& m = *impl_;
  MonitorCounters c;
  c.requests = m.requests.load();
  {
    std::lock_guard lock(m.eval_mu);
    c.windows = m.windows_total;
  }
  c.outcomes_joined = m.outcomes_joined.load(std::memory_order_relaxed);
  c.outcomes_unknown = m.outcomes_unknown.load(std::memory_order_relaxed);
  c.predictions_expired = m.expired.load(std::memory_order_relaxed);
  if (m.log) {
    c.logged = m.log->logged();
    c.log_errors = m.log->errors();
  }
  return c;
}

std::string Monitor::report_html(std::string_view title) const {
  ReportData data;
  data.title = title.empty() ? "ember report: " + impl_->opt.model : std::string(title);
  data.model = impl_->opt.model;
  {
    std::lock_guard lock(impl_->eval_mu);
    data.windows.assign(impl_->windows.begin(), impl_->windows.end());
    data.latency = impl_->latency_hist;
  }
  for (auto it = data.windows.rbegin(); it != data.windows.rend(); ++it) {
    if (it->drift) {
      data.drift = it->drift;
      break;
    }
  }
  data.outcomes = outcomes();
  return render_report(data);
}

}  // namespace ember
