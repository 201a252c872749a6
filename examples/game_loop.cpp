// A game loop at a fixed frame rate that asks a model about its entities every frame
// and never waits for it: requests are submitted (validated on the frame thread, run on
// ember's batcher thread) and answers are collected by polling on later frames. Halfway
// through, the model is hot-swapped (reloaded in the background) while frames go on.
// At the end it reports how long the frame thread spent inside ember.
//
//   game_loop MODEL_DIR RECORDS.jsonl [--frames N] [--fps F] [--per-frame K] [--sleep 1]
//
// The rest of each frame is busy (as a game's is, simulating and rendering); with
// --sleep 1 the thread sleeps instead, and comes back to cold caches each frame.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <ember/ember.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: game_loop MODEL_DIR RECORDS.jsonl [--frames N] [--fps F] [--per-frame K] [--sleep 1]\n");
    return 2;
  }
  int frames = 600, fps = 60, per_frame = 4, sleep = 0;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (value <= 0 && flag != "--sleep") {
      std::fprintf(stderr, "game_loop: %s needs a positive number\n", flag.c_str());
      return 2;
    }
    if (flag == "--frames") frames = value;
    else if (flag == "--fps") fps = value;
    else if (flag == "--per-frame") per_frame = value;
    else if (flag == "--sleep") sleep = value;
    else {
      std::fprintf(stderr, "game_loop: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  std::vector<std::string> records;
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) records.push_back(line);
  }
  if (records.empty()) {
    std::fprintf(stderr, "game_loop: no records in %s\n", argv[2]);
    return 1;
  }

  ember::DeploymentOptions options;
  options.batching.enabled = true;  // the frame's requests share forward passes
  options.batching.max_batch_rows = 64;
  options.batching.max_queue_delay = std::chrono::microseconds(500);
  auto deployment = ember::Deployment::create(argv[1], options);
  if (!deployment.ok()) {
    std::fprintf(stderr, "game_loop: %s\n", deployment.status().to_string().c_str());
    return 1;
  }
  auto& model = **deployment;

  std::deque<ember::PendingAnswer> in_flight;
  std::vector<double> inside_us;  // per frame: time the frame thread spent in ember
  inside_us.reserve(static_cast<std::size_t>(frames));
  long submitted = 0, answered = 0, failed = 0;
  std::size_t next = 0;
  const auto frame_time = std::chrono::nanoseconds(1'000'000'000 / fps);
  auto frame_start = std::chrono::steady_clock::now();
  ember::Answer answer;
  for (int frame = 0; frame < frames; ++frame) {
    if (frame == frames / 2) model.notify();  // hot-swap mid-run, off the frame thread
    const auto t0 = std::chrono::steady_clock::now();
    // Collect what is ready (never wait), then ask about this frame's entities.
    while (!in_flight.empty() && in_flight.front().try_get(answer)) {
      in_flight.pop_front();
      ++answered;
      if (!answer.status.ok()) ++failed;
    }
    for (int k = 0; k < per_frame; ++k) {
      in_flight.push_back(model.submit_pending(records[next++ % records.size()]));
      ++submitted;
    }
    inside_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    // ... the rest of the frame: physics, rendering ...
    frame_start += frame_time;
    if (sleep != 0) {
      std::this_thread::sleep_until(frame_start);
    } else {
      while (std::chrono::steady_clock::now() < frame_start) {
      }
    }
  }
  // After the last frame, wait for the stragglers (a real game would just keep going).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!in_flight.empty() && std::chrono::steady_clock::now() < give_up) {
    if (in_flight.front().try_get(answer)) {
      in_flight.pop_front();
      ++answered;
      if (!answer.status.ok()) ++failed;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  std::sort(inside_us.begin(), inside_us.end());
  const auto pct = [&](double q) {
    return inside_us[std::min(inside_us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(inside_us.size())))];
  };
  const auto counters = model.counters();
  std::printf("%d frames at %d fps (%s between frames), %d requests per frame: %ld submitted, %ld answered, %ld failed, %llu swap(s), "
              "%llu forward passes\n",
              frames, fps, sleep != 0 ? "sleeping" : "busy", per_frame, submitted, answered, failed, static_cast<unsigned long long>(model.swaps()),
              static_cast<unsigned long long>(counters.batches));
  std::printf("time inside ember per frame: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, worst %.1f us\n", pct(0.5),
              pct(0.99), pct(0.999), inside_us.back());
  return answered == submitted && failed == 0 && model.swaps() >= 1 ? 0 : 1;
}
