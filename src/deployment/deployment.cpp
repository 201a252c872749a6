// Deployment: one served name, its versions swapped atomically, replaced versions
// destroyed on the executor once their last request ends.
#include "ember/deployment.hpp"

#include "deployment/batcher.hpp"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

namespace ember {

namespace fs = std::filesystem;

std::string_view version_state_name(VersionState state) noexcept {
  switch (state) {
    case VersionState::kLoading: return "loading";
    case VersionState::kReady: return "ready";
    case VersionState::kFailed: return "failed";
    case VersionState::kDraining: return "draining";
    case VersionState::kUnloaded: return "unloaded";
  }
  return "unknown";
}

namespace {

// What outlives the Deployment while replaced versions drain: the status table and
// where events go.
struct Shared {
  std::mutex mu;
  std::vector<VersionStatus> statuses;
  std::function<void(const DeploymentEvent&)> on_event;
  std::string name;
  std::shared_ptr<Registry> registry;  // null for a directory
  std::string actor;

  void set(const std::string& version, VersionState state, Status reason) {
    VersionStatus status{version, state, std::move(reason), std::chrono::system_clock::now()};
    {
      std::lock_guard<std::mutex> guard(mu);
      VersionStatus* entry = nullptr;
      if (state != VersionState::kLoading) {
        for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
          if (it->version == version) {
            entry = &*it;
            break;
          }
        }
      }
      if (entry == nullptr) statuses.push_back(status);
      else *entry = status;
    }
    if (registry) {
      nlohmann::json detail = nlohmann::json::object();
      if (!status.reason.ok()) detail["reason"] = status.reason.to_string();
      (void)registry->record_event(actor, "deploy_" + std::string(version_state_name(state)), name + "/" + version,
                                   detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (on_event) {
      try {
        on_event(DeploymentEvent{name, status});
      } catch (...) {  // a host callback must not break the deployment
      }
    }
  }
};

// MemAvailable from /proc/meminfo, in bytes; 0 when unknown.
std::uint64_t memory_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  std::uint64_t value = 0;
  std::string unit;
  while (f >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

std::uint64_t directory_bytes(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

Status same_request_schema(const Model& old_model, const Model& new_model) {
  const auto& a = old_model.schema().features();
  const auto& b = new_model.schema().features();
  if (a.size() != b.size()) {
    return failed_precondition("its request schema has " + std::to_string(b.size()) + " features; the serving version's has " +
                               std::to_string(a.size()));
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].kind != b[i].kind || a[i].required != b[i].required ||
        a[i].categories != b[i].categories) {
      return failed_precondition("its request schema differs from the serving version's at feature '" + b[i].name +
                                 "' (was '" + a[i].name + "')");
    }
  }
  return {};
}

}  // namespace

struct Deployment::Impl {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::shared_ptr<Registry> registry;
  std::string ref;
  fs::path dir;
  DeploymentOptions options;
  std::shared_ptr<TaskExecutor> executor;
  std::atomic<std::shared_ptr<const Model>> current;
  std::atomic<std::uint64_t> swaps{0};

  std::mutex reload_mu;          // one reload at a time
  std::string current_version;   // guarded by reload_mu
  std::string last_failed;       // the watch does not retry a version that failed
  std::uint64_t loads = 0;

  // notify() tasks in flight and the watch's stop flag. Tasks hold the gate, not the
  // Impl, when they finish: the last reference to the Impl (and so to an executor the
  // deployment owns) is never dropped on an executor thread.
  struct Gate {
    std::mutex mu;  // for waiting only: entering and leaving take no lock
    std::condition_variable cv;
    std::atomic<int> tasks{0};
    std::atomic<bool> stopping{false};

    /// Counts a task in; false (and not counted) once the deployment is going.
    bool enter() {
      tasks.fetch_add(1);
      if (stopping.load()) {
        leave();
        return false;
      }
      return true;
    }
    void leave() {
      // A task that reads `stopping` as false left before stop_and_wait() read `tasks`.
      if (tasks.fetch_sub(1) == 1 && stopping.load()) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
    void stop_and_wait() {
      std::unique_lock<std::mutex> lock(mu);
      stopping.store(true);
      cv.notify_all();  // the watch
      cv.wait(lock, [&] { return tasks.load() == 0; });
    }
  };
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::thread watch;

  detail::ServingStats stats;
  std::atomic<std::uint64_t> next_seq{1};
  std::unique_ptr<detail::Batcher> batcher;  // with batching on

  // The one path every asynchronous request takes.
  void submit(std::string_view json, std::function<void(Answer&&)> complete, const RequestOptions& ro,
              bool caller_waits = false);

  std::shared_ptr<const Model> wrap(std::unique_ptr<Model> model, const std::string& version) {
    // The last reference may go on a request thread: the model is destroyed on the
    // executor instead (inline only when the executor refuses).
    auto state = shared;
    auto exec = executor;
    return std::shared_ptr<const Model>(model.release(), [state, exec, version](const Model* m) {
      auto destroy = [state, m, version] {
        delete m;
        state->set(version, VersionState::kUnloaded, {});
      };
      bool posted = false;
      try {
        posted = exec && exec->post(destroy);
      } catch (...) {
        posted = false;
      }
      if (!posted) destroy();
    });
  }

  // What the source names now: the version, a reference that pins it, and its size.
  struct Target {
    std::string version;
    std::string pinned;
    std::uint64_t bytes = 0;
  };
  Result<Target> target() {
    if (registry) {
      auto info = registry->show(ref);
      if (!info.ok()) return info.status();
      return Target{std::to_string(info->version), info->name + "/" + std::to_string(info->version), info->bytes};
    }
    return Target{std::to_string(loads + 1), dir.string(), directory_bytes(dir)};
  }

  Status reload(bool only_if_moved) {
    std::lock_guard<std::mutex> guard(reload_mu);
    return reload_locked(only_if_moved);
  }

  Status switch_to(std::string new_ref) {
    if (!registry) return failed_precondition("deployment '" + shared->name + "' serves a directory, not a registry");
    auto parsed = parse_model_ref(new_ref);
    if (!parsed.ok()) return parsed.status();
    if (parsed->name != shared->name) {
      return invalid_argument("deployment '" + shared->name + "' cannot switch to another name: '" + new_ref + "'");
    }
    std::lock_guard<std::mutex> guard(reload_mu);
    std::string old_ref = std::exchange(ref, std::move(new_ref));
    const Status s = reload_locked(false);
    if (!s.ok()) ref = std::move(old_ref);
    return s;
  }

  Status reload_locked(bool only_if_moved) {
    auto t = target();
    if (!t.ok()) return t.status().with_context("deployment '" + shared->name + "'");
    if (registry && t->version == current_version) return {};
    if (only_if_moved && t->version == last_failed) return {};
    shared->set(t->version, VersionState::kLoading, {});
    const Status status = load(*t);
    if (!status.ok()) {
      last_failed = t->version;
      shared->set(t->version, VersionState::kFailed, status);
      return status;
    }
    return {};
  }

  Status load(const Target& t) {
    auto old = current.load();
    if (old && options.memory_factor > 0) {
      const std::uint64_t need = static_cast<std::uint64_t>(static_cast<double>(t.bytes) * options.memory_factor);
      const std::uint64_t available = memory_available();
      if (available != 0 && need > available) {
        return resource_exhausted("version " + t.version + " needs about " + std::to_string(need >> 20) +
                                  " MiB beside the serving version; " + std::to_string(available >> 20) +
                                  " MiB are available");
      }
    }
    ModelOptions mo = options.model;
    mo.version = t.version;
    if (options.metrics) mo.observers.push_back(options.metrics->observer(shared->name, t.version));
    if (options.monitor) mo.observers.push_back(options.monitor);
    Result<std::unique_ptr<Model>> model = internal_error("not loaded");
    if (registry) {
      mo.name.clear();
      model = registry->load_model(t.pinned, mo);
    } else {
      if (mo.name.empty()) mo.name = shared->name;
      model = Model::load(dir, mo);
    }
    if (!model.ok()) return model.status();
    if (old) EMBER_RETURN_IF_ERROR(same_request_schema(*old, **model));
    old.reset();
    EMBER_RETURN_IF_ERROR(warm_up(**model));
    ++loads;
    auto fresh = wrap(std::move(model).value(), t.version);
    if (options.metrics) options.metrics->watch(fresh);
    auto previous = current.exchange(std::move(fresh));
    const std::string previous_version = current_version;
    current_version = t.version;
    last_failed.clear();
    if (previous) swaps.fetch_add(1, std::memory_order_relaxed);
    shared->set(t.version, VersionState::kReady, {});
    if (previous) shared->set(previous_version, VersionState::kDraining, {});
    previous.reset();  // destroyed now (on the executor) unless a request still holds it
    return {};
  }

  // The warm-up records one by one and, with batching, at the batch sizes the version
  // will see.
  Status warm_up(const Model& model) const {
    const auto& records = options.warmup_records;
    Prediction p;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const Status s = model.predict(records[i], p);
      if (!s.ok() && s.code() != StatusCode::kInvalidArgument) {
        return s.with_context("warm-up record " + std::to_string(i + 1));
      }
    }
    if (!options.batching.enabled || records.empty()) return {};
    std::vector<std::size_t> sizes = options.batching.preferred_batch_rows;
    sizes.push_back(options.batching.max_batch_rows);
    BatchPrediction bp;
    std::vector<std::string_view> batch;
    for (std::size_t n : sizes) {
      batch.clear();
      for (std::size_t i = 0; i < n; ++i) batch.push_back(records[i % records.size()]);
      const Status s = model.predict_batch(batch, bp);
      if (!s.ok() && s.code() != StatusCode::kInvalidArgument) {
        return s.with_context("warm-up batch of " + std::to_string(n) + " rows");
      }
    }
    return {};
  }

  void watch_loop() {
    std::unique_lock<std::mutex> lock(gate->mu);
    while (!gate->stopping) {
      gate->cv.wait_for(lock, options.watch_interval, [&] { return gate->stopping.load(); });
      if (gate->stopping) break;
      lock.unlock();
      (void)reload(true);
      lock.lock();
    }
  }
};

Deployment::Deployment(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Deployment::~Deployment() {
  impl_->gate->stop_and_wait();
  if (impl_->watch.joinable()) impl_->watch.join();
  impl_->batcher.reset();  // answers what is queued
  std::lock_guard<std::mutex> guard(impl_->reload_mu);
  impl_->current.store(nullptr);  // destroyed on the executor, or here when it refuses
}

Result<std::unique_ptr<Deployment>> Deployment::create(std::shared_ptr<Registry> registry, std::string ref,
                                                       const DeploymentOptions& options) {
  if (!registry) return invalid_argument("deployment: the registry is null");
  auto parsed = parse_model_ref(ref);
  if (!parsed.ok()) return parsed.status();
  auto impl = std::make_shared<Impl>();
  impl->registry = registry;
  impl->ref = std::move(ref);
  impl->options = options;
  impl->shared->name = parsed->name;
  impl->shared->registry = std::move(registry);
  impl->shared->actor = options.actor;
  impl->shared->on_event = options.on_event;
  return start(std::move(impl));
}

Result<std::unique_ptr<Deployment>> Deployment::create(std::shared_ptr<Registry> registry, std::string ref) {
  const DeploymentOptions defaults;
  return create(std::move(registry), std::move(ref), defaults);
}

Result<std::unique_ptr<Deployment>> Deployment::create(const fs::path& dir) {
  const DeploymentOptions defaults;
  return create(dir, defaults);
}

Result<std::unique_ptr<Deployment>> Deployment::create(const fs::path& dir, const DeploymentOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found("model directory '" + dir.string() + "' does not exist");
  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->options = options;
  impl->shared->name = options.model.name.empty() ? fs::absolute(dir, ec).filename().string() : options.model.name;
  impl->shared->actor = options.actor;
  impl->shared->on_event = options.on_event;
  return start(std::move(impl));
}

Result<std::unique_ptr<Deployment>> Deployment::start(std::shared_ptr<Impl> impl) {
  impl->executor = impl->options.executor;
  if (!impl->executor) {
    ThreadPoolOptions small;  // one thread, more while requests keep it busy
    small.threads = 1;
    small.max_threads = 8;
    auto pool = ThreadPool::create(small);
    if (!pool.ok()) return pool.status();
    impl->executor = std::move(*pool);
  }
  EMBER_RETURN_IF_ERROR(impl->reload(false));
  if (impl->options.batching.enabled) {
    auto batcher = detail::Batcher::start(impl->options.batching, impl->stats, impl->options.metrics, impl->shared->name);
    if (!batcher.ok()) return batcher.status();
    impl->batcher = std::move(*batcher);
  }
  if (impl->options.watch_interval.count() > 0 && impl->registry) {
    try {
      impl->watch = std::thread([raw = impl.get()] { raw->watch_loop(); });
    } catch (const std::system_error& e) {
      return resource_exhausted(std::string("deployment: the watch thread cannot start: ") + e.what());
    }
  }
  return std::unique_ptr<Deployment>(new Deployment(std::move(impl)));
}

Status Deployment::predict(std::string_view json, Prediction& prediction, const PredictOptions& options) const {
  impl_->stats.requests.add();
  const auto model = impl_->current.load();
  return model->predict(json, prediction, options);
}

Status Deployment::predict(std::string_view json, Prediction& prediction, const RequestOptions& options) const {
  if (!impl_->batcher) {
    impl_->stats.requests.add();
    PredictOptions po;
    const auto deadline = options.deadline.count() > 0 ? options.deadline : impl_->options.batching.default_deadline;
    if (deadline.count() > 0) po.budget = deadline;
    const Status s = impl_->current.load()->predict(json, prediction, po);
    if (options.request_id != 0) prediction.request_id = options.request_id;
    return s;
  }
  // The caller yields its core while it waits, rather than sleeping on a futex: a
  // sleeping thread's wake-up costs more than a small model's forward pass.
  struct Waiter {
    std::atomic<bool> done{false};
    std::mutex mu;
    std::condition_variable cv;
    bool sleeping = false;
    Answer answer;
  };
  auto waiter = std::make_shared<Waiter>();
  impl_->submit(json,
                [waiter](Answer&& a) {
                  waiter->answer = std::move(a);
                  std::lock_guard<std::mutex> lock(waiter->mu);
                  waiter->done.store(true, std::memory_order_release);
                  if (waiter->sleeping) waiter->cv.notify_one();
                },
                options, true);
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
  while (!waiter->done.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  if (!waiter->done.load(std::memory_order_acquire)) {
    std::unique_lock<std::mutex> lock(waiter->mu);
    waiter->sleeping = true;
    waiter->cv.wait(lock, [&] { return waiter->done.load(std::memory_order_acquire); });
  }
  prediction = std::move(waiter->answer.prediction);
  return waiter->answer.status;
}

void Deployment::Impl::submit(std::string_view json, std::function<void(Answer&&)> complete, const RequestOptions& ro,
                              bool caller_waits) {
  stats.requests.add();
  const auto arrival = std::chrono::steady_clock::now();
  const auto deadline_after = ro.deadline.count() > 0 ? ro.deadline : options.batching.default_deadline;
  auto model = current.load();
  if (!batcher) {
    // Unbatched: the whole request on the executor. The deployment waits for these
    // tasks when it goes, and each lets go of its version before it counts itself done:
    // the last reference to an executor the deployment owns is never dropped on one of
    // that executor's threads.
    auto g = gate;
    if (!g->enter()) {
      Answer a;
      a.status = Status(StatusCode::kUnavailable, "the deployment is shutting down");
      complete(std::move(a));
      return;
    }
    const auto done = [g] { g->leave(); };
    auto task = [model, text = std::string(json), complete, deadline_after, arrival, id = ro.request_id,
                 done]() mutable {
      Answer a;
      PredictOptions po;
      if (deadline_after.count() > 0) po.budget = deadline_after;
      a.status = model->predict(text, a.prediction, po);
      model.reset();
      if (id != 0) a.prediction.request_id = id;
      a.queue_time = std::chrono::steady_clock::now() - arrival - a.prediction.latency;
      a.batch_rows = 1;
      complete(std::move(a));
      done();
    };
    model.reset();
    bool posted = false;
    try {
      posted = executor->post(std::move(task));
    } catch (...) {
      posted = false;
    }
    if (!posted) {
      Answer a;
      a.status = resource_exhausted("the executor refused the request");
      complete(std::move(a));
      done();
    }
    return;
  }
  // Validated and preprocessed here, on the caller's thread; the batcher runs the model.
  thread_local PreparedBatch prepared;  // its memory is reused by this thread's next request
  const std::string_view records[] = {json};
  const Status prepared_status = model->prepare(records, prepared);
  if (!prepared_status.ok() || prepared.rows != 1) {
    if (options.metrics || options.monitor) {  // refused before any stage: no observer of the model heard of it
      RequestEvent e;
      e.model_name = model->name();
      e.model_version = model->version();
      e.status = prepared_status.ok() ? invalid_argument("refused") : prepared_status;
      if (!prepared.validation.records.empty()) e.validation = &prepared.validation.records.front().second;
      if (options.metrics) options.metrics->observer(shared->name, model->version())->on_request(e);
      if (options.monitor) options.monitor->on_request(e);
    }
    Answer a;
    a.status = prepared_status.ok() ? invalid_argument("the record was refused") : prepared_status;
    if (!prepared.validation.records.empty()) a.prediction.validation = std::move(prepared.validation.records.front().second);
    a.prediction.model_name = model->name();
    a.prediction.model_version = model->version();
    a.prediction.request_id = ro.request_id;
    complete(std::move(a));
    return;
  }
  detail::BatchItem item;
  item.model = std::move(model);
  item.row.assign(prepared.inputs.begin(), prepared.inputs.end());
  item.complete = std::move(complete);
  item.arrival = arrival;
  if (deadline_after.count() > 0) item.deadline = arrival + deadline_after;
  item.priority = std::min<std::uint8_t>(ro.priority, kPriorityLevels - 1);
  item.seq = ro.request_id != 0 ? ro.request_id : next_seq.fetch_add(1, std::memory_order_relaxed);
  const Status queued = batcher->enqueue(item, caller_waits);
  if (!queued.ok()) {
    Answer a;
    a.status = queued;
    item.complete(std::move(a));
  }
}

void Deployment::submit(std::string json, std::function<void(Answer&&)> callback, const RequestOptions& options) const {
  impl_->submit(json, std::move(callback), options);
}

std::future<Answer> Deployment::submit(std::string json, const RequestOptions& options) const {
  auto promise = std::make_shared<std::promise<Answer>>();
  auto future = promise->get_future();
  impl_->submit(json, [promise](Answer&& a) { promise->set_value(std::move(a)); }, options);
  return future;
}

struct PendingAnswer::State {
  std::atomic<bool> ready{false};
  std::atomic<bool> taken{false};
  Answer answer;
};

bool PendingAnswer::ready() const noexcept {
  return state_ && state_->ready.load(std::memory_order_acquire) && !state_->taken.load(std::memory_order_relaxed);
}

bool PendingAnswer::try_get(Answer& out) {
  if (!state_ || !state_->ready.load(std::memory_order_acquire)) return false;
  if (state_->taken.exchange(true, std::memory_order_relaxed)) return false;
  out = std::move(state_->answer);
  return true;
}

PendingAnswer Deployment::submit_pending(std::string json, const RequestOptions& options) const {
  auto state = std::make_shared<PendingAnswer::State>();
  impl_->submit(json,
                [state](Answer&& a) {
                  state->answer = std::move(a);
                  state->ready.store(true, std::memory_order_release);
                },
                options);
  return PendingAnswer(std::move(state));
}

ServingCounters Deployment::counters() const { return impl_->stats.snapshot(); }

Status Deployment::reload() { return impl_->reload(false); }

Status Deployment::switch_to(std::string ref) { return impl_->switch_to(std::move(ref)); }

void Deployment::notify() {
  auto gate = impl_->gate;
  if (!gate->enter()) return;
  const auto done = [gate] { gate->leave(); };
  std::weak_ptr<Impl> weak = impl_;
  bool posted = false;
  try {
    posted = impl_->executor->post([weak, done] {
      if (auto impl = weak.lock()) (void)impl->reload(false);  // released before done()
      done();
    });
  } catch (...) {
    posted = false;
  }
  if (!posted) done();
}

std::shared_ptr<const Model> Deployment::current() const { return impl_->current.load(); }

std::vector<VersionStatus> Deployment::versions() const {
  std::lock_guard<std::mutex> guard(impl_->shared->mu);
  return impl_->shared->statuses;
}

std::uint64_t Deployment::swaps() const noexcept { return impl_->swaps.load(std::memory_order_relaxed); }

const std::string& Deployment::name() const noexcept { return impl_->shared->name; }

}  // namespace ember
