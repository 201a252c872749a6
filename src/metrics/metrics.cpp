// Metrics: striped recording on the request path, Prometheus / OpenMetrics text on read.
#include "ember/metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/striped.hpp"

namespace ember {

namespace {

constexpr std::array<double, 22> kLatencyBuckets = {1e-6,   2.5e-6, 5e-6,   1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                                     5e-4,   1e-3,   2.5e-3, 5e-3,   1e-2,   2.5e-2, 5e-2, 0.1,
                                                     0.25,   0.5,    1.0,    2.5,    5.0,    10.0};
constexpr std::array<double, 11> kRowBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

// A histogram with a fixed set of bounds: each thread adds to its own stripe.
template <std::size_t N>
class StripedHistogram {
 public:
  explicit StripedHistogram(const std::array<double, N>& bounds) : bounds_(bounds) {}
  void observe(double value) noexcept {
    const std::size_t b =
        static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    Stripe& s = stripes_[detail::thread_stripe()];
    s.counts[b].fetch_add(1, std::memory_order_relaxed);  // b == N: above every bound (+Inf only)
    s.sum_nano.fetch_add(static_cast<std::uint64_t>(value * 1e9 + 0.5), std::memory_order_relaxed);
  }
  struct Snapshot {
    std::array<std::uint64_t, N + 1> counts{};  // per bucket, not cumulative
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const {
    Snapshot out;
    std::uint64_t sum_nano = 0;
    for (const auto& s : stripes_) {
      for (std::size_t i = 0; i <= N; ++i) out.counts[i] += s.counts[i].load(std::memory_order_relaxed);
      sum_nano += s.sum_nano.load(std::memory_order_relaxed);
    }
    for (auto c : out.counts) out.count += c;
    out.sum = static_cast<double>(sum_nano) * 1e-9;
    return out;
  }
  const std::array<double, N>& bounds() const { return bounds_; }

 private:
  struct alignas(64) Stripe {
    std::array<std::atomic<std::uint64_t>, N + 1> counts{};
    std::atomic<std::uint64_t> sum_nano{0};
  };
  const std::array<double, N>& bounds_;
  std::array<Stripe, detail::kStripes> stripes_{};
};

// One model version's request series.
struct Series {
  detail::StripedCounter requests, invalid, flagged, needs_review, failed;
  StripedHistogram<kLatencyBuckets.size()> latency{kLatencyBuckets};
  // Which stage served: names are added (rarely) under a mutex, counted lock-free.
  static constexpr std::size_t kMaxStages = 16;
  std::array<std::atomic<const std::string*>, kMaxStages> stage_names{};
  std::array<detail::StripedCounter, kMaxStages> served{};
  std::mutex names_mu;
  std::vector<std::unique_ptr<std::string>> names_owned;

  detail::StripedCounter* served_counter(std::string_view stage) {
    for (std::size_t i = 0; i < kMaxStages; ++i) {
      const std::string* name = stage_names[i].load(std::memory_order_acquire);
      if (name == nullptr) break;
      if (*name == stage) return &served[i];
    }
    std::lock_guard<std::mutex> lock(names_mu);
    for (std::size_t i = 0; i < kMaxStages; ++i) {
      const std::string* name = stage_names[i].load(std::memory_order_acquire);
      if (name != nullptr && *name == stage) return &served[i];
      if (name == nullptr) {
        names_owned.push_back(std::make_unique<std::string>(stage));
        stage_names[i].store(names_owned.back().get(), std::memory_order_release);
        return &served[i];
      }
    }
    return nullptr;  // more stage names than a chain has: not counted by name
  }
};

struct DeploymentSeries {
  StripedHistogram<kLatencyBuckets.size()> queue_time{kLatencyBuckets};
  StripedHistogram<kRowBuckets.size()> batch_rows{kRowBuckets};
};

class MetricsObserver final : public Observer {
 public:
  explicit MetricsObserver(std::shared_ptr<Series> series) : series_(std::move(series)) {}
  void on_request(const RequestEvent& e) override {
    Series& s = *series_;
    std::uint64_t rows = 1;
    if (e.batch_validation != nullptr) {
      const BatchReport& b = *e.batch_validation;
      s.requests.add(b.valid + b.invalid);
      if (b.invalid > 0) s.invalid.add(b.invalid);
      if (b.flagged > 0) s.flagged.add(b.flagged);
      rows = e.batch_features != nullptr ? e.batch_features->rows : b.valid;
    } else if (e.validation == nullptr && e.model_input != nullptr && e.model_input->dim() == 2) {
      rows = static_cast<std::uint64_t>(e.model_input->size(0));  // execute(): rows already prepared
      s.requests.add(rows);
    } else {
      s.requests.add();
      if (e.status.code() == StatusCode::kInvalidArgument && e.model_input == nullptr) {
        s.invalid.add();  // refused by validation or preprocessing: no stage ran
        return;
      }
      if (e.validation != nullptr && !e.validation->flagged().empty()) s.flagged.add();
    }
    if (!e.status.ok()) {
      s.failed.add(rows);
    } else if (e.result != nullptr) {
      if (!e.result->needs_review.empty()) s.needs_review.add(e.result->needs_review.size());
      if (auto* c = s.served_counter(e.result->served_by)) c->add(rows);
    }
    s.latency.observe(std::chrono::duration<double>(e.latency).count());
  }

 private:
  std::shared_ptr<Series> series_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

void escape_label(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

std::string label_text(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    escape_label(out, labels[i].second);
    out += '"';
  }
  out += '}';
  return out;
}

// The shortest text that reads back as `v` ("1e-06", "0.25", "3").
std::string number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// Families are written whole: HELP and TYPE once, then every sample.
class Writer {
 public:
  explicit Writer(MetricsFormat f) : format_(f) {}
  void counter(const std::string& name, const std::string& help, const std::vector<std::pair<Labels, double>>& samples) {
    if (samples.empty()) return;
    const std::string family = format_ == MetricsFormat::kOpenMetrics ? name : name + "_total";
    out_ += "# HELP " + family + " " + help + "\n# TYPE " + family + " counter\n";
    for (const auto& [labels, v] : samples) out_ += name + "_total" + label_text(labels) + " " + number(v) + "\n";
  }
  void gauge(const std::string& name, const std::string& help, const std::vector<std::pair<Labels, double>>& samples) {
    if (samples.empty()) return;
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n";
    for (const auto& [labels, v] : samples) out_ += name + label_text(labels) + " " + number(v) + "\n";
  }
  template <std::size_t N>
  void histogram(const std::string& name, const std::string& help,
                 const std::vector<std::pair<Labels, typename StripedHistogram<N>::Snapshot>>& samples,
                 const std::array<double, N>& bounds) {
    if (samples.empty()) return;
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
    for (const auto& [labels, snap] : samples) {
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i <= N; ++i) {
        cumulative += snap.counts[i];
        Labels with_le = labels;
        with_le.emplace_back("le", i < N ? number(bounds[i]) : std::string("+Inf"));
        out_ += name + "_bucket" + label_text(with_le) + " " + std::to_string(cumulative) + "\n";
      }
      out_ += name + "_sum" + label_text(labels) + " " + number(snap.sum) + "\n";
      out_ += name + "_count" + label_text(labels) + " " + std::to_string(snap.count) + "\n";
    }
  }
  std::string finish() {
    if (format_ == MetricsFormat::kOpenMetrics) out_ += "# EOF\n";
    return std::move(out_);
  }

 private:
  MetricsFormat format_;
  std::string out_;
};

}  // namespace

namespace detail {

struct MetricsImpl {
  mutable std::mutex mu;  // the maps; never taken on the request path
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Series>> series;
  std::map<std::string, std::shared_ptr<DeploymentSeries>, std::less<>> deployments;
  std::vector<std::weak_ptr<const Model>> watched;

  DeploymentSeries& deployment(std::string_view model) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = deployments.find(model);
    if (it == deployments.end()) it = deployments.emplace(std::string(model), std::make_shared<DeploymentSeries>()).first;
    return *it->second;
  }
};

}  // namespace detail

std::span<const double> latency_buckets() noexcept { return kLatencyBuckets; }

Metrics::Metrics() : impl_(std::make_unique<detail::MetricsImpl>()) {}
Metrics::~Metrics() = default;

std::shared_ptr<Metrics> Metrics::create() { return std::shared_ptr<Metrics>(new Metrics()); }

std::shared_ptr<Observer> Metrics::observer(std::string_view model, std::string_view version) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto& s = impl_->series[{std::string(model), std::string(version)}];
  if (!s) s = std::make_shared<Series>();
  return std::make_shared<MetricsObserver>(s);
}

void Metrics::watch(const std::shared_ptr<const Model>& model) {
  if (!model) return;
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::erase_if(impl_->watched, [](const std::weak_ptr<const Model>& w) { return w.expired(); });
  impl_->watched.push_back(model);
}

void Metrics::record_batch(std::string_view model, std::span<const std::chrono::nanoseconds> queue_times) {
  DeploymentSeries& d = impl_->deployment(model);  // one look-up (under the map's lock) per batch
  d.batch_rows.observe(static_cast<double>(queue_times.size()));
  for (const auto q : queue_times) d.queue_time.observe(std::chrono::duration<double>(q).count());
}

std::string Metrics::text(MetricsFormat format) const {
  using Samples = std::vector<std::pair<Labels, double>>;
  Samples requests, invalid, flagged, review, failed, served;
  std::vector<std::pair<Labels, StripedHistogram<kLatencyBuckets.size()>::Snapshot>> latency, queue;
  std::vector<std::pair<Labels, StripedHistogram<kRowBuckets.size()>::Snapshot>> rows;
  Samples calls, stage_failures, fallbacks, timeouts, not_permitted, breaker;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [key, s] : impl_->series) {
      const Labels l = {{"model", key.first}, {"version", key.second}};
      requests.emplace_back(l, static_cast<double>(s->requests.load()));
      invalid.emplace_back(l, static_cast<double>(s->invalid.load()));
      flagged.emplace_back(l, static_cast<double>(s->flagged.load()));
      review.emplace_back(l, static_cast<double>(s->needs_review.load()));
      failed.emplace_back(l, static_cast<double>(s->failed.load()));
      for (std::size_t i = 0; i < Series::kMaxStages; ++i) {
        const std::string* name = s->stage_names[i].load(std::memory_order_acquire);
        if (name == nullptr) break;
        Labels sl = l;
        sl.emplace_back("stage", *name);
        served.emplace_back(sl, static_cast<double>(s->served[i].load()));
      }
      latency.emplace_back(l, s->latency.snapshot());
    }
    for (const auto& [name, d] : impl_->deployments) {
      queue.emplace_back(Labels{{"model", name}}, d->queue_time.snapshot());
      rows.emplace_back(Labels{{"model", name}}, d->batch_rows.snapshot());
    }
    // One sample per (model, version, stage): the newest watched model for those labels.
    std::map<std::tuple<std::string, std::string, std::string>, StageCounters> stages;
    for (const auto& w : impl_->watched) {
      if (auto m = w.lock()) {
        for (const auto& st : m->counters().stages) stages[{m->name(), m->version(), st.name}] = st;
      }
    }
    for (const auto& [key, st] : stages) {
      const Labels l = {{"model", std::get<0>(key)}, {"version", std::get<1>(key)}, {"stage", std::get<2>(key)}};
      calls.emplace_back(l, static_cast<double>(st.calls));
      stage_failures.emplace_back(l, static_cast<double>(st.failures));
      fallbacks.emplace_back(l, static_cast<double>(st.fallbacks));
      timeouts.emplace_back(l, static_cast<double>(st.timeouts));
      not_permitted.emplace_back(l, static_cast<double>(st.not_permitted));
      if (st.breaker) breaker.emplace_back(l, static_cast<double>(static_cast<int>(st.breaker->state)));
    }
  }
  Writer w(format);
  w.counter("ember_requests", "Records received (a batch counts each record).", requests);
  w.counter("ember_invalid_requests", "Records refused by validation or preprocessing.", invalid);
  w.counter("ember_flagged_requests", "Valid records with a flagged feature.", flagged);
  w.counter("ember_needs_review", "Rows served under the confidence threshold.", review);
  w.counter("ember_failed_requests", "Valid requests no stage could answer.", failed);
  w.counter("ember_served", "Rows answered, by the stage that answered.", served);
  w.histogram<kLatencyBuckets.size()>("ember_request_latency_seconds", "Time from request to answer.", latency,
                                      kLatencyBuckets);
  w.counter("ember_stage_calls", "Calls made to a stage.", calls);
  w.counter("ember_stage_failures", "Errors, exceptions and bad outputs of a stage.", stage_failures);
  w.counter("ember_stage_fallbacks", "Requests that went past a stage to a later one.", fallbacks);
  w.counter("ember_stage_timeouts", "Calls to a stage that missed the deadline.", timeouts);
  w.counter("ember_stage_not_permitted", "Requests a stage's breaker refused.", not_permitted);
  w.gauge("ember_breaker_state", "Breaker state: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.", breaker);
  w.histogram<kLatencyBuckets.size()>("ember_queue_time_seconds", "Time a batched request waited for its batch.",
                                      queue, kLatencyBuckets);
  w.histogram<kRowBuckets.size()>("ember_batch_rows", "Rows per forward pass of the batcher.", rows, kRowBuckets);
  return w.finish();
}

}  // namespace ember
