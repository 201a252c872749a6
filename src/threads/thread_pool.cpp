// ThreadPool: threads that take posted tasks, polling briefly before they sleep.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "ember/threads.hpp"
#include "threads/spin.hpp"

namespace ember {

TaskExecutor::~TaskExecutor() = default;

struct ThreadPool::State {
  ThreadPoolOptions options;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  std::vector<std::thread> threads;
  std::size_t idle = 0;     // threads asleep on cv
  std::size_t polling = 0;  // threads polling `queued` before they sleep
  std::atomic<std::size_t> queued{0};
  std::atomic<std::size_t> started{0};
  std::atomic<bool> stopping{false};
  bool stop = false;

  // Under the lock. False when the system refuses a thread.
  bool start_thread() {
    try {
      threads.emplace_back([this] { loop(); });
    } catch (...) {  // std::system_error, std::bad_alloc
      return false;
    }
    started.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      if (!stop && tasks.empty()) {  // poll a little before sleeping
        ++polling;
        lock.unlock();
        detail::spin_until(
            [&] { return queued.load(std::memory_order_acquire) > 0 || stopping.load(std::memory_order_relaxed); },
            std::chrono::steady_clock::now() + options.spin);
        lock.lock();
        --polling;
      }
      while (!stop && tasks.empty()) {
        ++idle;
        cv.wait(lock);
        --idle;
      }
      if (tasks.empty()) return;  // stopping, and nothing left to run
      auto task = std::move(tasks.front());
      tasks.pop_front();
      queued.store(tasks.size(), std::memory_order_release);
      lock.unlock();
      try {
        task();
      } catch (...) {  // a task's exception must not end the process
      }
      task = nullptr;  // release what the task holds before waiting again
      lock.lock();
    }
  }
};

ThreadPool::ThreadPool(std::unique_ptr<State> state) : state_(std::move(state)) {}

Result<std::shared_ptr<ThreadPool>> ThreadPool::create(const ThreadPoolOptions& options) {
  if (options.max_threads == 0 || options.max_threads < options.threads) {
    return invalid_argument("thread pool: max_threads must be at least 1 and at least threads");
  }
  std::shared_ptr<ThreadPool> pool;
  try {
    auto state = std::make_unique<State>();
    state->options = options;
    pool.reset(new ThreadPool(std::move(state)));
  } catch (const std::bad_alloc&) {
    return resource_exhausted("thread pool: out of memory");
  }
  std::lock_guard<std::mutex> lock(pool->state_->mutex);
  for (std::size_t i = 0; i < options.threads; ++i) {
    if (!pool->state_->start_thread()) {
      return resource_exhausted("thread pool: could not start thread " + std::to_string(i + 1) + " of " +
                                std::to_string(options.threads));
    }
  }
  return pool;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
    state_->stopping.store(true);
  }
  state_->cv.notify_all();
  for (auto& t : state_->threads) {
    if (t.joinable()) t.join();
  }
}

bool ThreadPool::post(std::function<void()> task) {
  State& s = *state_;
  try {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.stop) return false;
    if (s.tasks.size() >= s.idle + s.polling) {  // nobody is free to take it at once
      // Every thread is busy and no more can start: refuse, rather than queue the task
      // behind calls that may hang.
      if (s.threads.size() >= s.options.max_threads || !s.start_thread()) return false;
    }
    s.tasks.push_back(std::move(task));
    s.queued.store(s.tasks.size(), std::memory_order_release);
    if (s.idle > 0) s.cv.notify_one();
    return true;
  } catch (...) {  // std::bad_alloc from the queue
    return false;
  }
}

std::size_t ThreadPool::concurrency() const noexcept {
  return std::max<std::size_t>(1, state_->options.max_threads);
}
std::size_t ThreadPool::threads() const noexcept { return state_->started.load(std::memory_order_relaxed); }

}  // namespace ember
