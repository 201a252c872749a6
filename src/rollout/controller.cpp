// RolloutController: a TrafficSplit of the control and the candidate whose weights the
// canary analysis sets, with every decision written to the registry in order by one
// writer, and the registry read back (sync) for host commands and restarts.
#include "ember/rollout_controller.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace ember {

RolloutObservation rollout_observation(bool candidate, const Status& status, const Prediction& prediction) {
  RolloutObservation o;
  o.candidate = candidate;
  o.invalid = status.code() == StatusCode::kInvalidArgument && !prediction.validation.ok();
  o.failed = !status.ok() && !o.invalid;
  o.fallback = status.ok() && !prediction.skipped.empty();
  o.latency = prediction.latency;
  if (status.ok() && !prediction.outputs.empty()) {
    auto v = prediction.outputs[0].tensor.at(0);
    if (v.ok()) o.output = *v;
  }
  return o;
}

namespace detail {

namespace {

// What serves now: the alias alone (rollout 0), or the control and the candidate.
struct Arms {
  std::int64_t rollout = 0;
  std::int64_t control = 0, candidate = 0;  // versions (control 0 for the alias alone)
  std::unique_ptr<TrafficSplit> split;
  std::shared_ptr<Deployment> alias_deployment;  // the alias alone: reloaded by sync()
};

// A decision of the analysis, waiting to be written.
struct Decision {
  std::int64_t rollout = 0;
  RolloutState state = RolloutState::kRunning;
  std::size_t step = 0;
  std::string reason;
  std::string status_json;
};

std::optional<RolloutState> state_of(std::string_view s) {
  if (s == "running") return RolloutState::kRunning;
  if (s == "paused") return RolloutState::kPaused;
  if (s == "promoted") return RolloutState::kPromoted;
  if (s == "aborted") return RolloutState::kAborted;
  return std::nullopt;
}

}  // namespace

struct RolloutControllerImpl : std::enable_shared_from_this<RolloutControllerImpl> {
  std::shared_ptr<Registry> registry;
  std::string name, alias, subject;
  RolloutControllerOptions options;
  std::shared_ptr<TaskExecutor> executor;  // the writer's

  std::atomic<std::shared_ptr<const Arms>> arms;

  mutable std::mutex mu;  // analysis, record, decisions, saved
  std::optional<CanaryAnalysis> analysis;
  std::int64_t analysis_rollout = 0;
  RolloutRecord record;
  std::deque<Decision> decisions;
  bool writing = false;
  std::uint64_t saved_requests = ~std::uint64_t{0};  // requests the saved status had seen
  mutable std::condition_variable idle_cv;

  std::mutex sync_mu;  // one sync (and host command) at a time

  std::mutex watch_mu;
  std::condition_variable watch_cv;
  std::atomic<bool> stopping{false};
  std::thread watch;

  [[nodiscard]] std::chrono::nanoseconds now() const { return options.now().time_since_epoch(); }

  Result<std::shared_ptr<Deployment>> deploy(const std::string& ref, bool candidate = false) const {
    DeploymentOptions o = candidate && options.candidate_deployment ? *options.candidate_deployment : options.deployment;
    o.watch_interval = std::chrono::milliseconds(0);
    o.on_event = nullptr;
    auto d = Deployment::create(registry, ref, o);
    if (!d.ok()) return d.status().with_context("rollout of " + subject);
    return std::shared_ptr<Deployment>(std::move(*d));
  }

  Result<std::shared_ptr<const Arms>> alias_arms() const {
    auto d = deploy(subject);
    if (!d.ok()) return d.status();
    auto a = std::make_shared<Arms>();
    a->alias_deployment = *d;
    std::vector<SplitArm> split{{"control", *d, 100.0}};
    auto s = TrafficSplit::create(std::move(split), {});
    if (!s.ok()) return s.status();
    a->split = std::move(*s);
    return std::shared_ptr<const Arms>(std::move(a));
  }

  Result<std::shared_ptr<const Arms>> rollout_arms(const RolloutRecord& r, const RolloutPlan& plan, double weight) {
    auto control = deploy(name + "/" + std::to_string(r.control));
    if (!control.ok()) return control.status();
    auto candidate = deploy(name + "/" + std::to_string(r.candidate), true);
    if (!candidate.ok()) return candidate.status();
    auto a = std::make_shared<Arms>();
    a->rollout = r.id;
    a->control = r.control;
    a->candidate = r.candidate;
    TrafficSplitOptions so;
    so.executor = options.deployment.executor;
    const bool compares = std::any_of(plan.checks.begin(), plan.checks.end(),
                                      [](const RolloutCheck& c) { return c.metric == RolloutMetric::kDisagreement; });
    if (options.compare_queue > 0 && compares) {
      so.shadow.deployment = *control;
      so.shadow.copy_arms = {"candidate"};
      so.shadow.max_queue = options.compare_queue;
      std::weak_ptr<RolloutControllerImpl> self = weak_from_this();
      const std::int64_t id = r.id;
      so.shadow.on_compare = [self, id](std::span<const ShadowComparison> c) {
        if (auto impl = self.lock()) impl->on_compare(id, c);
      };
    }
    std::vector<SplitArm> split{{"control", *control, 100.0 - weight}, {"candidate", *candidate, weight}};
    auto s = TrafficSplit::create(std::move(split), so);
    if (!s.ok()) return s.status();
    a->split = std::move(*s);
    return std::shared_ptr<const Arms>(std::move(a));
  }

  // --- the request path -------------------------------------------------------------

  // Feeds the analysis of `rollout` (when it is still the one analysed) under the lock,
  // then acts on what it decided: every request, comparison and outcome comes here.
  template <typename Feed>
  void analyse(std::int64_t rollout, Feed&& feed) {
    std::vector<RolloutEvent> events;
    bool flush = false;
    {
      std::lock_guard lock(mu);
      if (!analysis || analysis_rollout != rollout) return;
      const RolloutStatus before = analysis->status();
      feed(*analysis);
      flush = changed_locked(before, events);
    }
    tell(events);
    if (flush) flush_if_refused();
  }

  void on_compare(std::int64_t rollout, std::span<const ShadowComparison> batch) {
    const auto t = now();
    analyse(rollout, [&](CanaryAnalysis& a) {
      for (const auto& c : batch) a.observe_comparison(c.primary, c.shadow, t);
    });
  }

  // After the analysis moved on its own: new weights at once, the decision queued for
  // the writer, the host told. True when the executor refused the writer: the caller
  // writes the decisions itself (flush_if_refused) once it has let go of `mu`.
  [[nodiscard]] bool changed_locked(const RolloutStatus& before, std::vector<RolloutEvent>& events) {
    const RolloutStatus& now_status = analysis->status();
    if (now_status.state == before.state && now_status.step == before.step) return false;
    if (stopping.load()) return false;  // being destroyed: nothing more is decided
    apply_weights_locked();
    Decision d;
    d.rollout = analysis_rollout;
    d.state = now_status.state;
    d.step = now_status.step;
    d.reason = now_status.state == RolloutState::kRunning
                   ? "step " + std::to_string(before.step + 1) + " passed every check"
                   : now_status.reason;
    d.status_json = rollout_status_to_json(now_status);
    decisions.push_back(std::move(d));
    events.push_back(event_locked(now_status.state == RolloutState::kRunning ? "step"
                                                                              : std::string(rollout_state_name(now_status.state))));
    if (!writing) {
      writing = true;
      std::shared_ptr<RolloutControllerImpl> self = shared_from_this();
      bool posted = false;
      try {
        posted = executor->post([self] { self->writer_task(); });
      } catch (...) {
        posted = false;
      }
      if (!posted) {
        writing = false;
        return true;
      }
    }
    return false;
  }

  void apply_weights_locked() {
    auto a = arms.load(std::memory_order_acquire);
    if (!a || a->rollout != analysis_rollout || a->rollout == 0) return;
    const double w = analysis->status().weight;
    const double weights[] = {100.0 - w, w};
    (void)a->split->set_weights(weights);  // weights the plan validated
  }

  RolloutEvent event_locked(std::string kind) const {
    RolloutEvent e;
    e.subject = subject;
    e.rollout = analysis_rollout;
    e.candidate = record.candidate;
    e.kind = std::move(kind);
    if (analysis) e.status = analysis->status();
    return e;
  }

  void tell(const std::vector<RolloutEvent>& events) const {
    if (!options.on_event) return;
    for (const auto& e : events) {
      try {
        options.on_event(e);
      } catch (...) {
      }
    }
  }

  // --- writing decisions ------------------------------------------------------------

  // Writes the queued decisions in order; true when the registry must be read again.
  // A decision the registry refuses because a host changed the rollout meanwhile is
  // dropped (sync() adopts the host's); a promotion the registry refuses (policy, a
  // moved alias) pauses the rollout instead.
  bool write_queued() {
    bool resync = false;
    std::vector<RolloutEvent> events;
    for (;;) {
      Decision d;
      std::int64_t revision = 0;
      {
        std::lock_guard lock(mu);
        if (decisions.empty()) break;
        d = std::move(decisions.front());
        decisions.pop_front();
        if (d.rollout != record.id) continue;
        revision = record.revision;
      }
      Result<RolloutRecord> r = internal_error("no decision");
      switch (d.state) {
        case RolloutState::kRunning:
          r = registry->advance_rollout(d.rollout, static_cast<std::int64_t>(d.step), revision, d.status_json,
                                        options.actor, d.reason);
          break;
        case RolloutState::kPaused:
          r = registry->command_rollout(name, alias, RolloutCommand::kPause, options.actor, d.reason, revision,
                                        d.status_json);
          break;
        case RolloutState::kAborted:
          r = registry->command_rollout(name, alias, RolloutCommand::kAbort, options.actor, d.reason, revision,
                                        d.status_json);
          break;
        case RolloutState::kPromoted:
          r = registry->command_rollout(name, alias, RolloutCommand::kPromote, options.actor, d.reason, revision,
                                        d.status_json);
          if (!r.ok() && r.status().code() != StatusCode::kAborted) {
            const std::string why = "promotion refused: " + r.status().message();
            (void)registry->command_rollout(name, alias, RolloutCommand::kPause, options.actor, why, revision,
                                            d.status_json);
            std::lock_guard lock(mu);
            events.push_back(event_locked("error"));
            events.back().status.reason = why;
            resync = true;
            continue;
          }
          break;
      }
      std::lock_guard lock(mu);
      if (r.ok()) {
        if (r->id == record.id) record = *r;
        saved_requests = analysis ? analysis->status().control.requests + analysis->status().candidate.requests : 0;
      } else {
        resync = true;  // a host's command came first, or the registry failed: read it again
        if (r.status().code() != StatusCode::kAborted) {
          events.push_back(event_locked("error"));
          events.back().status.reason = r.status().message();
        }
      }
    }
    tell(events);
    return resync;
  }

  // The writer, on the executor: one at a time (`writing`), until nothing is queued.
  void writer_task() {
    for (;;) {
      if (write_queued() && !stopping.load()) (void)sync();
      std::lock_guard lock(mu);
      if (decisions.empty()) {
        writing = false;
        idle_cv.notify_all();
        return;
      }
    }
  }

  // --- reading the registry ---------------------------------------------------------

  Status sync() {
    std::lock_guard sync_lock(sync_mu);
    if (stopping.load()) return {};
    auto r = registry->rollout(name, alias);
    if (!r.ok() && r.status().code() != StatusCode::kNotFound) return r.status();
    std::vector<RolloutEvent> events;
    Status result;
    if (r.ok() && r->active()) {
      result = adopt(*r, events);
      if (!result.ok()) {
        // A candidate (or control) that cannot be loaded: the host is told, and the alias
        // serves alone meanwhile rather than not at all.
        std::lock_guard lock(mu);
        RolloutEvent e = event_locked("error");
        e.rollout = r->id;
        e.candidate = r->candidate;
        e.status.reason = result.to_string();
        events.push_back(std::move(e));
      }
      if (!result.ok() && !arms.load(std::memory_order_acquire)) (void)serve_alias();
    } else {
      {
        std::lock_guard lock(mu);
        if (r.ok() && r->id == record.id && r->revision > record.revision) apply_locked(*r, events);
        if (r.ok() && analysis_rollout != r->id) {
          // A rollout that ended before this process looked: its outcome, for status().
          if (auto restored = analysis_of(*r); restored.ok()) {
            analysis = std::move(*restored);
            analysis_rollout = r->id;
          }
        }
        if (r.ok()) record = *r;
      }
      result = serve_alias();
    }
    tell(events);
    if (!result.ok()) return result;
    // Time-held steps end without traffic; the analysis is saved for `ember rollout status`.
    std::vector<RolloutEvent> tick_events;
    std::string to_save;
    std::int64_t id = 0;
    {
      std::lock_guard lock(mu);
      if (analysis && record.active() && analysis_rollout == record.id) {
        const RolloutStatus before = analysis->status();
        analysis->tick(now());
        (void)changed_locked(before, tick_events);  // flushed below
        const auto& s = analysis->status();
        const std::uint64_t seen = s.control.requests + s.candidate.requests;
        if (seen != saved_requests) {
          to_save = rollout_status_to_json(s);
          saved_requests = seen;
          id = record.id;
        }
      }
    }
    tell(tick_events);
    flush_if_refused();
    if (!to_save.empty()) EMBER_RETURN_IF_ERROR(registry->save_rollout_status(id, to_save));
    return {};
  }

  // Decisions queued while the executor refused the writer are written on this thread
  // (a refusal the registry gives them is read back at the next sync).
  void flush_if_refused() {
    {
      std::lock_guard lock(mu);
      if (writing || decisions.empty()) return;
      writing = true;
    }
    (void)write_queued();
    std::lock_guard lock(mu);
    writing = false;
    idle_cv.notify_all();
  }

  // The analysis of a stored rollout, at its step and in its state.
  Result<CanaryAnalysis> analysis_of(const RolloutRecord& r) const {
    auto plan = parse_rollout_plan(r.plan);
    if (!plan.ok()) return plan.status().with_context("rollout " + std::to_string(r.id) + "'s stored plan");
    CanaryAnalysis a(std::move(*plan), now());
    a.restore(static_cast<std::size_t>(r.step), state_of(r.state).value_or(RolloutState::kPaused), r.reason,
              std::chrono::microseconds(r.step_started_us));
    return a;
  }

  // An active rollout in the registry: picked up when new, else its changes applied.
  Status adopt(const RolloutRecord& r, std::vector<RolloutEvent>& events) {
    bool fresh = false;
    {
      std::lock_guard lock(mu);
      fresh = r.id != analysis_rollout;
      if (!fresh) {
        if (r.revision > record.revision) apply_locked(r, events);
        return {};
      }
    }
    auto a = analysis_of(r);
    if (!a.ok()) return a.status();
    auto built = rollout_arms(r, a->plan(), a->status().weight);
    if (!built.ok()) return built.status();
    // The arms replaced are destroyed after `mu` is let go: their shadow may be waiting
    // for it to fold in a last comparison, and their split waits for their shadow.
    std::shared_ptr<const Arms> replaced;
    std::lock_guard lock(mu);
    analysis = std::move(*a);
    analysis_rollout = r.id;
    record = r;
    decisions.clear();
    saved_requests = ~std::uint64_t{0};
    replaced = arms.exchange(*built, std::memory_order_acq_rel);
    events.push_back(event_locked("started"));
    return {};
  }

  // A host's change read from the registry, applied to the analysis and the weights.
  void apply_locked(const RolloutRecord& r, std::vector<RolloutEvent>& events) {
    const RolloutState before = analysis && analysis_rollout == r.id ? analysis->status().state : RolloutState::kRunning;
    const std::size_t before_step = analysis ? analysis->status().step : 0;
    record = r;
    if (!analysis || analysis_rollout != r.id) return;
    const auto state = state_of(r.state).value_or(RolloutState::kPaused);
    if (state == before && static_cast<std::size_t>(r.step) == before_step) return;
    analysis->restore(static_cast<std::size_t>(r.step), state, r.reason, std::chrono::microseconds(r.step_started_us));
    // Decisions of ours not yet written are overtaken by the registry's state.
    decisions.clear();
    apply_weights_locked();
    const std::string kind = state == RolloutState::kRunning
                                 ? (before == RolloutState::kPaused ? "resumed" : "step")
                                 : std::string(rollout_state_name(state));
    events.push_back(event_locked(kind));
  }

  // No rollout active: the alias serves alone (once the last rollout's arms are no longer
  // what it holds), following its moves.
  Status serve_alias() {
    auto a = arms.load(std::memory_order_acquire);
    if (a && a->rollout == 0) return a->alias_deployment->reload();
    if (a && a->rollout != 0) {
      auto info = registry->show(subject);
      if (!info.ok()) return info.status();
      const double w = a->split->weights()[1];
      const std::int64_t serving = w >= 100.0 ? a->candidate : w <= 0.0 ? a->control : 0;
      if (serving == info->version) return {};
    }
    auto built = alias_arms();
    if (!built.ok()) return built.status();
    arms.store(*built, std::memory_order_release);
    return {};
  }

  // --- host commands ----------------------------------------------------------------

  Status command(RolloutCommand c, std::string_view actor, std::string_view reason) {
    std::string status_json;
    {
      std::lock_guard lock(mu);
      if (analysis) status_json = rollout_status_to_json(analysis->status());
    }
    auto r = registry->command_rollout(name, alias, c, actor, reason, Registry::kAnyVersion, status_json);
    if (!r.ok()) return r.status();
    return sync();
  }

  void start_watch() {
    if (options.watch_interval.count() <= 0) return;
    std::weak_ptr<RolloutControllerImpl> self = weak_from_this();
    const auto interval = options.watch_interval;
    watch = std::thread([self, interval] {
      for (;;) {
        auto impl = self.lock();
        if (!impl) return;
        {
          std::unique_lock lock(impl->watch_mu);
          if (impl->watch_cv.wait_for(lock, interval, [&] { return impl->stopping.load(); })) return;
        }
        (void)impl->sync();
      }
    });
  }
};

}  // namespace detail

Result<std::unique_ptr<RolloutController>> RolloutController::create(std::shared_ptr<Registry> registry,
                                                                     std::string ref,
                                                                     const RolloutControllerOptions& options) {
  if (!registry) return invalid_argument("rollout controller: no registry");
  auto parsed = parse_model_ref(ref);
  if (!parsed.ok()) return parsed.status();
  if (parsed->alias.empty() || parsed->alias == "latest") {
    return invalid_argument("rollout controller: '" + ref + "' names no alias (e.g. churn@production)");
  }
  auto impl = std::make_shared<detail::RolloutControllerImpl>();
  impl->registry = std::move(registry);
  impl->name = parsed->name;
  impl->alias = parsed->alias;
  impl->subject = parsed->name + "@" + parsed->alias;
  impl->options = options;
  if (!impl->options.now) impl->options.now = [] { return std::chrono::system_clock::now(); };
  impl->executor = options.deployment.executor;
  if (!impl->executor) {
    ThreadPoolOptions po;  // the writer: one task at a time, a second thread while one returns
    po.threads = 0;
    po.max_threads = 2;
    auto pool = ThreadPool::create(po);
    if (!pool.ok()) return pool.status();
    impl->executor = *pool;
  }
  // An error with something serving (a rollout whose versions cannot be loaded; the
  // alias serves) is the host's to read from on_event or the next sync().
  if (Status st = impl->sync(); !st.ok() && !impl->arms.load(std::memory_order_acquire)) return st;
  impl->start_watch();
  return std::unique_ptr<RolloutController>(new RolloutController(std::move(impl)));
}

RolloutController::RolloutController(std::shared_ptr<detail::RolloutControllerImpl> impl) : impl_(std::move(impl)) {}

RolloutController::~RolloutController() {
  {
    std::lock_guard lock(impl_->watch_mu);
    impl_->stopping.store(true);
  }
  impl_->watch_cv.notify_all();
  if (impl_->watch.joinable()) impl_->watch.join();
  {
    std::unique_lock lock(impl_->mu);
    impl_->idle_cv.wait(lock, [&] { return !impl_->writing; });
  }
  impl_->flush_if_refused();  // nothing decided is lost
  impl_->arms.store(nullptr);  // the split waits for the control's copies
}

Status RolloutController::predict(std::string_view json, std::string_view key, Prediction& prediction,
                                  std::string* arm) const {
  const auto a = impl_->arms.load(std::memory_order_acquire);
  std::size_t chosen = 0;
  const Status st = a->split->predict(json, key, prediction, &chosen);
  if (arm != nullptr) *arm = chosen == 1 ? "candidate" : "control";
  if (a->rollout != 0) {
    const RolloutObservation o = rollout_observation(chosen == 1, st, prediction);
    const auto t = impl_->now();
    impl_->analyse(a->rollout, [&](CanaryAnalysis& analysis) { analysis.observe(o, t); });
  }
  return st;
}

void RolloutController::record_outcome(const Prediction& prediction, double outcome) const {
  const auto a = impl_->arms.load(std::memory_order_acquire);
  if (a->rollout == 0 || prediction.model_name != impl_->name ||
      prediction.model_version != std::to_string(a->candidate)) {
    return;
  }
  auto v = prediction.value(prediction.outputs.empty() ? "output" : prediction.outputs[0].name);
  if (!v.ok()) return;
  const auto t = impl_->now();
  impl_->analyse(a->rollout, [&](CanaryAnalysis& analysis) { analysis.observe_outcome(*v, outcome, t); });
}

Status RolloutController::sync() { return impl_->sync(); }

Status RolloutController::pause(std::string_view actor, std::string_view reason) {
  return impl_->command(RolloutCommand::kPause, actor, reason);
}
Status RolloutController::resume(std::string_view actor, std::string_view reason) {
  return impl_->command(RolloutCommand::kResume, actor, reason);
}
Status RolloutController::abort(std::string_view actor, std::string_view reason) {
  return impl_->command(RolloutCommand::kAbort, actor, reason);
}
Status RolloutController::promote(std::string_view actor, std::string_view reason) {
  return impl_->command(RolloutCommand::kPromote, actor, reason);
}

RolloutStatus RolloutController::status() const {
  std::lock_guard lock(impl_->mu);
  return impl_->analysis ? impl_->analysis->status() : RolloutStatus{};
}

RolloutRecord RolloutController::record() const {
  std::lock_guard lock(impl_->mu);
  return impl_->record;
}

bool RolloutController::has_rollout() const {
  std::lock_guard lock(impl_->mu);
  return impl_->record.active();
}

double RolloutController::candidate_weight() const {
  const auto a = impl_->arms.load(std::memory_order_acquire);
  return a->rollout == 0 ? 0.0 : a->split->weights()[1];
}

bool RolloutController::wait_idle(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  {
    std::unique_lock lock(impl_->mu);
    if (!impl_->idle_cv.wait_until(lock, deadline, [&] { return !impl_->writing; })) return false;
  }
  const auto a = impl_->arms.load(std::memory_order_acquire);
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (!a->split->wait_for_shadow(std::max(left, std::chrono::milliseconds(0)))) return false;
  std::unique_lock lock(impl_->mu);
  return impl_->idle_cv.wait_until(lock, deadline, [&] { return !impl_->writing; });
}

}  // namespace ember
