// ember opens no socket: the host serves the metrics. This program serves a model's
// metrics on http://127.0.0.1:PORT/metrics (Prometheus scrapes it) while it predicts
// the records of a file in a loop, with a plain POSIX socket and no HTTP library.
//
//   metrics_endpoint MODEL_DIR RECORDS.jsonl [PORT] [SECONDS]
//   curl http://127.0.0.1:9464/metrics
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ember/ember.hpp>

namespace {

// Answers every connection with the metrics text (any path but /metrics gets 404).
void serve(int listener, const ember::Metrics& metrics, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int c = ::accept(listener, nullptr, nullptr);
    if (c < 0) continue;
    char request[2048];
    const ssize_t n = ::recv(c, request, sizeof request - 1, 0);
    request[n > 0 ? n : 0] = '\0';
    const bool wanted = std::strncmp(request, "GET /metrics", 12) == 0;
    const bool openmetrics = std::strstr(request, "application/openmetrics-text") != nullptr;
    const std::string body = wanted ? metrics.text(openmetrics ? ember::MetricsFormat::kOpenMetrics
                                                               : ember::MetricsFormat::kPrometheus)
                                    : "not found\n";
    const char* type = openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                   : "text/plain; version=0.0.4; charset=utf-8";
    const std::string response = std::string(wanted ? "HTTP/1.1 200 OK" : "HTTP/1.1 404 Not Found") +
                                 "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                                 "\r\nConnection: close\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < response.size();) {
      const ssize_t w = ::send(c, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (w <= 0) break;
      sent += static_cast<std::size_t>(w);
    }
    ::close(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: metrics_endpoint MODEL_DIR RECORDS.jsonl [PORT] [SECONDS]\n");
    return 2;
  }
  const int port = argc > 3 ? std::atoi(argv[3]) : 9464;
  const int seconds = argc > 4 ? std::atoi(argv[4]) : 60;
  std::vector<std::string> records;
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) records.push_back(line);
  }
  if (records.empty() || port <= 0 || port > 65535) {
    std::fprintf(stderr, "metrics_endpoint: no records, or a bad port\n");
    return 2;
  }
  ember::DeploymentOptions options;
  options.metrics = ember::Metrics::create();  // the deployment records into it
  auto deployment = ember::Deployment::create(argv[1], options);
  if (!deployment.ok()) {
    std::fprintf(stderr, "metrics_endpoint: %s\n", deployment.status().to_string().c_str());
    return 1;
  }

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int yes = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 16) != 0) {
    std::fprintf(stderr, "metrics_endpoint: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
    return 1;
  }
  std::printf("serving http://127.0.0.1:%d/metrics for %d s\n", port, seconds);
  std::fflush(stdout);
  std::atomic<bool> stop{false};
  std::thread server([&] { serve(listener, *options.metrics, stop); });

  ember::Prediction p;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  for (std::size_t i = 0; std::chrono::steady_clock::now() < end; ++i) {
    (void)(*deployment)->predict(records[i % records.size()], p);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  server.join();
  ::close(listener);
  return 0;
}
