// Deployment: one served name, its versions swapped atomically, replaced versions
// destroyed on the executor once their last request ends.
#include "ember/deployment.hpp"

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

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
      std::string detail = "{}";
      if (!status.reason.ok()) {
        std::string escaped;
        for (char c : status.reason.to_string()) {
          if (c == '"' || c == '\\') escaped += '\\';
          if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
        }
        detail = "{\"reason\":\"" + escaped + "\"}";
      }
      (void)registry->record_event(actor, "deploy_" + std::string(version_state_name(state)), name + "/" + version,
                                   detail);
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
    std::mutex mu;
    std::condition_variable cv;
    int tasks = 0;
    bool stopping = false;
  };
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::thread watch;

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
    if (!executor) return internal_error("no executor");
    mo.version = t.version;
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
    Prediction p;
    for (std::size_t i = 0; i < options.warmup_records.size(); ++i) {
      const Status s = (*model)->predict(options.warmup_records[i], p);
      if (!s.ok() && s.code() != StatusCode::kInvalidArgument) {
        return s.with_context("warm-up record " + std::to_string(i + 1));
      }
    }
    ++loads;
    auto fresh = wrap(std::move(model).value(), t.version);
    auto previous = current.exchange(std::move(fresh));
    const std::string previous_version = current_version;
    current_version = t.version;
    last_failed.clear();
    if (previous) swaps.fetch_add(1, std::memory_order_relaxed);
    shared->set(t.version, VersionState::kReady, {});
    if (previous) shared->set(previous_version, VersionState::kDraining, {});
    previous.reset();  // may destroy it now (on the executor) when no request holds it
    return {};
  }

  void watch_loop() {
    std::unique_lock<std::mutex> lock(gate->mu);
    while (!gate->stopping) {
      gate->cv.wait_for(lock, options.watch_interval, [&] { return gate->stopping; });
      if (gate->stopping) break;
      lock.unlock();
      (void)reload(true);
      lock.lock();
    }
  }
};

Deployment::Deployment(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Deployment::~Deployment() {
  {
    auto& gate = *impl_->gate;
    std::unique_lock<std::mutex> lock(gate.mu);
    gate.stopping = true;
    gate.cv.notify_all();
    gate.cv.wait(lock, [&] { return gate.tasks == 0; });
  }
  if (impl_->watch.joinable()) impl_->watch.join();
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
    ThreadPoolOptions one;
    one.threads = 1;
    one.max_threads = 1;
    auto pool = ThreadPool::create(one);
    if (!pool.ok()) return pool.status();
    impl->executor = std::move(*pool);
  }
  EMBER_RETURN_IF_ERROR(impl->reload(false));
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
  const auto model = impl_->current.load();
  return model->predict(json, prediction, options);
}

Status Deployment::reload() { return impl_->reload(false); }

void Deployment::notify() {
  auto gate = impl_->gate;
  {
    std::lock_guard<std::mutex> lock(gate->mu);
    if (gate->stopping) return;
    ++gate->tasks;
  }
  const auto done = [gate] {
    std::lock_guard<std::mutex> lock(gate->mu);
    --gate->tasks;
    gate->cv.notify_all();
  };
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
