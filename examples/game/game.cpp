// Agents chase a wandering target in a small arena drawn with SDL2. Every frame each
// agent asks the agent model whether to dash (Deployment::submit_pending, batched into one
// forward pass on ember's thread) and acts on the last answer it has: the frame never
// waits for the model. The scene runs twice from the same seed, first with the agents
// deciding by a fixed rule and then asking ember, and each run's frame time (simulate,
// ask, draw, present; not the wait for the next frame) is reported as p50 and p99.
//
//   game MODEL_DIR [--frames N] [--agents K] [--fps F] [--screenshot FILE.bmp]
//
// Headless: SDL_VIDEODRIVER=dummy (the renderer is SDL's software one either way).
// MODEL_DIR: written by make_agent_model.py.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <SDL.h>

#include <ember/ember.hpp>

namespace {

constexpr int kWidth = 640;
constexpr int kHeight = 400;

struct Agent {
  float x = 0, y = 0, energy = 1;
  bool dash = false;
  std::optional<ember::PendingAnswer> asking;  // the question in flight, if any
};

struct Scene {
  std::vector<Agent> agents;
  float tx = kWidth / 2.0f, ty = kHeight / 2.0f, heading = 0;
  std::mt19937 rng;
  long caught = 0;

  Scene(int n, unsigned seed) : rng(seed) {
    std::uniform_real_distribution<float> ux(0, kWidth), uy(0, kHeight);
    agents.resize(static_cast<std::size_t>(n));
    for (auto& a : agents) {
      a.x = ux(rng);
      a.y = uy(rng);
    }
  }

  // The target wanders; agents walk (or dash, spending energy) toward it.
  void step() {
    heading += std::uniform_real_distribution<float>(-0.3f, 0.3f)(rng);
    tx = std::clamp(tx + 2.0f * std::cos(heading), 10.0f, kWidth - 10.0f);
    ty = std::clamp(ty + 2.0f * std::sin(heading), 10.0f, kHeight - 10.0f);
    for (auto& a : agents) {
      const float dx = tx - a.x, dy = ty - a.y, d = std::hypot(dx, dy);
      const bool dashing = a.dash && a.energy > 0.05f;
      const float speed = dashing ? 4.0f : 1.5f;
      a.energy = std::clamp(a.energy + (dashing ? -0.02f : 0.01f), 0.0f, 1.0f);
      if (d < 8.0f) {
        ++caught;
        a.x = std::uniform_real_distribution<float>(0, kWidth)(rng);
        a.y = std::uniform_real_distribution<float>(0, kHeight)(rng);
      } else {
        a.x += speed * dx / d;
        a.y += speed * dy / d;
      }
    }
  }

  void draw(SDL_Renderer* r) const {
    SDL_SetRenderDrawColor(r, 20, 24, 32, 255);
    SDL_RenderClear(r);
    for (const auto& a : agents) {
      const SDL_Rect box{static_cast<int>(a.x) - 3, static_cast<int>(a.y) - 3, 6, 6};
      if (a.dash) {
        SDL_SetRenderDrawColor(r, 250, 200, 40, 255);
      } else {
        SDL_SetRenderDrawColor(r, 80, 140, 250, 255);
      }
      SDL_RenderFillRect(r, &box);
    }
    const SDL_Rect target{static_cast<int>(tx) - 5, static_cast<int>(ty) - 5, 10, 10};
    SDL_SetRenderDrawColor(r, 240, 60, 60, 255);
    SDL_RenderFillRect(r, &target);
    SDL_RenderPresent(r);
  }
};

struct RunResult {
  std::vector<double> frame_us;
  long caught = 0, asked = 0, answered = 0, failed = 0;
  std::map<std::string, long> served_by;
};

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

void take(Agent& a, ember::Answer& answer, RunResult& result) {
  ++result.answered;
  if (!answer.status.ok()) {
    ++result.failed;
    return;
  }
  a.dash = answer.prediction.value().value_or(0.0) > 0.5;
  ++result.served_by[answer.prediction.served_by];
}

// One run of the scene; with `model`, the agents ask it, otherwise a fixed rule decides.
RunResult run(SDL_Renderer* renderer, const ember::Deployment* model, int frames, int agents, int fps) {
  Scene scene(agents, 7);
  RunResult result;
  result.frame_us.reserve(static_cast<std::size_t>(frames));
  const auto frame_time = std::chrono::nanoseconds(1'000'000'000 / fps);
  auto next_frame = std::chrono::steady_clock::now();
  ember::Answer answer;
  char record[160];
  for (int frame = 0; frame < frames; ++frame) {
    const auto t0 = std::chrono::steady_clock::now();
    SDL_Event event;
    while (SDL_PollEvent(&event)) {
    }
    for (auto& a : scene.agents) {
      const float dx = scene.tx - a.x, dy = scene.ty - a.y;
      if (model == nullptr) {
        a.dash = a.energy > 0.5f && std::abs(dx) + std::abs(dy) < 200.0f;
        continue;
      }
      if (a.asking && a.asking->try_get(answer)) {  // never waits
        take(a, answer, result);
        a.asking.reset();
      }
      if (!a.asking) {
        std::snprintf(record, sizeof record, R"({"dx": %.2f, "dy": %.2f, "energy": %.3f})", dx, dy, a.energy);
        a.asking = model->submit_pending(record);
        ++result.asked;
      }
    }
    scene.step();
    scene.draw(renderer);
    result.frame_us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    next_frame += frame_time;
    std::this_thread::sleep_until(next_frame);
  }
  // The last questions, answered after the last frame (a game would just go on).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& a : scene.agents) {
    while (a.asking && std::chrono::steady_clock::now() < give_up) {
      if (a.asking->try_get(answer)) {
        take(a, answer, result);
        a.asking.reset();
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  result.caught = scene.caught;
  return result;
}

int positive(const char* flag, const char* value) {
  const long v = std::strtol(value, nullptr, 10);
  if (v <= 0 || v > 1'000'000) {
    std::fprintf(stderr, "game: %s needs a positive number\n", flag);
    std::exit(2);
  }
  return static_cast<int>(v);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc % 2 != 0) {
    std::fprintf(stderr, "usage: game MODEL_DIR [--frames N] [--agents K] [--fps F] [--screenshot FILE.bmp]\n");
    return 2;
  }
  int frames = 600, agents = 48, fps = 60;
  const char* screenshot = nullptr;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--frames") frames = positive(argv[i], argv[i + 1]);
    else if (flag == "--agents") agents = positive(argv[i], argv[i + 1]);
    else if (flag == "--fps") fps = positive(argv[i], argv[i + 1]);
    else if (flag == "--screenshot") screenshot = argv[i + 1];
    else {
      std::fprintf(stderr, "game: unknown option %s\n", flag.c_str());
      return 2;
    }
  }

  ember::DeploymentOptions options;
  options.batching.enabled = true;  // one forward pass for the frame's questions
  options.batching.max_batch_rows = 256;
  options.batching.max_queue_delay = std::chrono::microseconds(200);
  auto deployment = ember::Deployment::create(std::filesystem::path(argv[1]), options);
  if (!deployment.ok()) {
    std::fprintf(stderr, "game: %s\n", deployment.status().to_string().c_str());
    return 1;
  }

  if (SDL_Init(SDL_INIT_VIDEO) != 0) {
    std::fprintf(stderr, "game: SDL_Init: %s (headless: SDL_VIDEODRIVER=dummy)\n", SDL_GetError());
    return 1;
  }
  SDL_Window* window = SDL_CreateWindow("ember: agents", SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, kWidth,
                                        kHeight, 0);
  SDL_Renderer* renderer = window != nullptr ? SDL_CreateRenderer(window, -1, SDL_RENDERER_SOFTWARE) : nullptr;
  if (renderer == nullptr) {
    std::fprintf(stderr, "game: %s\n", SDL_GetError());
    SDL_Quit();
    return 1;
  }

  const RunResult rule = run(renderer, nullptr, frames, agents, fps);
  const RunResult asked = run(renderer, deployment->get(), frames, agents, fps);
  if (screenshot != nullptr) {
    SDL_Surface* shot = SDL_CreateRGBSurfaceWithFormat(0, kWidth, kHeight, 32, SDL_PIXELFORMAT_ARGB8888);
    if (shot == nullptr || SDL_RenderReadPixels(renderer, nullptr, SDL_PIXELFORMAT_ARGB8888, shot->pixels, shot->pitch) != 0 ||
        SDL_SaveBMP(shot, screenshot) != 0) {
      std::fprintf(stderr, "game: screenshot: %s\n", SDL_GetError());
    }
    SDL_FreeSurface(shot);
  }
  SDL_DestroyRenderer(renderer);
  SDL_DestroyWindow(window);
  SDL_Quit();

  std::printf("game: %d frames at %d fps, %d agents, %s video driver\n", frames, fps, agents,
              std::getenv("SDL_VIDEODRIVER") != nullptr ? std::getenv("SDL_VIDEODRIVER") : "default");
  std::printf("without ember: frame time p50 %.1f us, p99 %.1f us; %ld caught\n", percentile(rule.frame_us, 0.5),
              percentile(rule.frame_us, 0.99), rule.caught);
  std::string stages;
  for (const auto& [stage, n] : asked.served_by) stages += " " + stage + "=" + std::to_string(n);
  std::printf("with ember: frame time p50 %.1f us, p99 %.1f us; %ld caught; %ld asked, %ld answered, %ld failed;"
              " served by%s\n",
              percentile(asked.frame_us, 0.5), percentile(asked.frame_us, 0.99), asked.caught, asked.asked,
              asked.answered, asked.failed, stages.empty() ? " none" : stages.c_str());
  return asked.answered == asked.asked && asked.failed == 0 && asked.asked > 0 ? 0 : 1;
}
