// A full drift evaluation, timed in-process: reference statistics of the reference
// table (every value kept, as `ember drift --reference` does) and the comparison of the
// current table with them, for every column. Reading the CSV files is timed apart.
// With THREADS > 1, columns are shared with a ThreadPool of THREADS - 1 threads.
//   bench_drift REFERENCE.csv CURRENT.csv [REPETITIONS] [THREADS]   -> one JSON object on stdout
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ember/ember.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_drift REFERENCE.csv CURRENT.csv [REPETITIONS]\n");
    return 2;
  }
  const int reps = argc > 3 ? std::max(1, std::atoi(argv[3])) : 5;
  const int threads = argc > 4 ? std::max(1, std::atoi(argv[4])) : 1;
  std::shared_ptr<ember::ThreadPool> pool;
  if (threads > 1) {
    ember::ThreadPoolOptions po;
    po.threads = static_cast<std::size_t>(threads - 1);
    po.max_threads = po.threads;
    pool = *ember::ThreadPool::create(po);
  }
  const std::filesystem::path files[] = {argv[1], argv[2]};
  auto schema = ember::infer_schema(files);
  if (!schema.ok()) {
    std::fprintf(stderr, "%s\n", schema.status().to_string().c_str());
    return 1;
  }
  std::vector<double> read_s, eval_s;
  std::size_t drifted = 0, compared = 0, rows = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    auto ref = ember::read_table(files[0], *schema);
    auto cur = ember::read_table(files[1], *schema);
    read_s.push_back(seconds_since(t0));
    if (!ref.ok() || !cur.ok()) {
      std::fprintf(stderr, "cannot read the tables\n");
      return 1;
    }
    t0 = std::chrono::steady_clock::now();
    ember::ReferenceOptions exact;
    exact.exact_rows = ref->rows;
    exact.executor = pool.get();
    const auto stats = ember::describe_table(*ref, {}, exact);
    ember::DriftOptions options;
    options.executor = pool.get();
    auto result = ember::compare(stats, *cur, options);
    eval_s.push_back(seconds_since(t0));
    if (!result.ok()) {
      std::fprintf(stderr, "%s\n", result.status().to_string().c_str());
      return 1;
    }
    drifted = result->drifted;
    compared = result->compared;
    rows = ref->rows;
  }
  std::printf("{\"rows\": %zu, \"columns\": %zu, \"drifted\": %zu, \"read_s\": %.6f, \"evaluate_s\": %.6f}\n", rows, compared,
              drifted, median(read_s), median(eval_s));
  return 0;
}
