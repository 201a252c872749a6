// Batches: N records validated into one matrix, in parts on the host's executor.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "schema_internal.hpp"
#include "validate_internal.hpp"

namespace ember {

namespace detail {
namespace {

// Validates records[first, last) into consecutive rows from `values` / `text` (valid
// records only: an invalid one is overwritten by the record after it). Appends to
// `source_index` and `report`, whose indices are positions among all the records.
// Returns the number of rows written.
std::size_t validate_part(const SchemaImpl& impl, std::span<const std::string_view> records, std::size_t first,
                          std::size_t last, JsonParser& parser, double* values, std::int64_t* integers,
                          std::string* text,
                          std::vector<std::size_t>& source_index, BatchReport& report) {
  const std::size_t cols = impl.features.size();
  std::size_t rows = 0;
  ValidationReport one;
  for (std::size_t i = first; i < last; ++i) {
    const RowOut out{values + rows * cols, integers + rows * cols, text + rows * cols};
    clear_row(impl, out);
    one.clear();
    Status s;
    auto value = parser.parse(records[i]);
    if (!value.ok()) {
      one.add_error({"", "", "json", value.status().message()}, impl.options.max_errors);
      s = value.status();
    } else {
      s = validate_parsed(impl, *value, out, one);
    }
    if (!s.ok()) {
      ++report.invalid;
      report.records.emplace_back(i, one);
      continue;
    }
    ++report.valid;
    if (!one.flagged().empty()) {
      ++report.flagged;
      report.records.emplace_back(i, one);
    }
    source_index.push_back(i);
    ++rows;
  }
  return rows;
}

// What a thread other than the caller's found in its part of a batch.
struct Part {
  bool failed = false;  // it threw (out of memory)
  std::size_t first = 0;  // its records start here, and so do its rows in the matrix
  std::size_t rows = 0;
  std::vector<std::size_t> source_index;
  BatchReport report;
};

constexpr std::size_t kMinRecordsPerThread = 128;

}  // namespace
}  // namespace detail

Status Schema::validate_batch(std::span<const std::string_view> records, JsonParser& parser, FeatureBatch& batch,
                              BatchReport& report, BatchPolicy policy) const {
  BatchOptions options;
  options.policy = policy;
  return validate_batch(records, parser, batch, report, options);
}

Status Schema::validate_batch(std::span<const std::string_view> records, JsonParser& parser, FeatureBatch& batch,
                              BatchReport& report, const BatchOptions& options) const {
  const std::size_t n = records.size();
  const std::size_t cols = impl_->features.size();
  std::size_t threads = options.executor == nullptr ? 1
                        : options.threads == 0     ? options.executor->concurrency() + 1
                                                   : options.threads;
  threads = std::max<std::size_t>(1, std::min(threads, n / detail::kMinRecordsPerThread));
  const std::size_t chunk = (n + threads - 1) / threads;
  // Every part writes its rows where its records start; rows are closed up afterwards.
  batch.cols = cols;
  batch.values.resize(n * cols);
  batch.integers.resize(n * cols);
  batch.text.resize(n * cols);
  batch.source_index.clear();
  report = BatchReport{};
  std::vector<detail::Part> parts(threads - 1);
  // Parts posted to the executor; the caller waits for them before it closes up.
  std::mutex mutex;
  std::condition_variable done;
  std::size_t pending = 0;
  for (std::size_t t = 0; t < parts.size(); ++t) {
    detail::Part& part = parts[t];
    part.first = (t + 1) * chunk;
    const std::size_t last = std::min(n, part.first + chunk);
    auto work = [this, records, last, &parser, &part, &batch, cols] {
      JsonParser own(parser.limits());
      part.rows = detail::validate_part(*impl_, records, part.first, last, own, batch.values.data() + part.first * cols,
                                        batch.integers.data() + part.first * cols,
                                        batch.text.data() + part.first * cols, part.source_index, part.report);
    };
    bool posted = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++pending;
    }
    try {
      posted = options.executor->post([&, work] {
        try {
          work();
        } catch (...) {  // out of memory in a part: its records count as invalid below
          part.failed = true;
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (--pending == 0) done.notify_all();
      });
    } catch (...) {  // the host's post() threw: do the part here
    }
    if (!posted) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        --pending;
      }
      work();
    }
  }
  const auto wait_for_parts = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return pending == 0; });
  };
  try {
  batch.rows = detail::validate_part(*impl_, records, 0, std::min(n, chunk), parser, batch.values.data(),
                                     batch.integers.data(), batch.text.data(), batch.source_index, report);
  } catch (...) {
    wait_for_parts();  // the parts use this frame: they must end before it unwinds
    throw;
  }
  wait_for_parts();
  for (auto& part : parts) {
    if (part.failed) return resource_exhausted("validate_batch: out of memory in a part of the batch");
    if (part.first != batch.rows) {  // close the gap left by invalid records before it
      std::copy_n(batch.values.begin() + static_cast<std::ptrdiff_t>(part.first * cols), part.rows * cols,
                  batch.values.begin() + static_cast<std::ptrdiff_t>(batch.rows * cols));
      std::copy_n(batch.integers.begin() + static_cast<std::ptrdiff_t>(part.first * cols), part.rows * cols,
                  batch.integers.begin() + static_cast<std::ptrdiff_t>(batch.rows * cols));
      std::move(batch.text.begin() + static_cast<std::ptrdiff_t>(part.first * cols),
                batch.text.begin() + static_cast<std::ptrdiff_t>((part.first + part.rows) * cols),
                batch.text.begin() + static_cast<std::ptrdiff_t>(batch.rows * cols));
    }
    batch.rows += part.rows;
    batch.source_index.insert(batch.source_index.end(), part.source_index.begin(), part.source_index.end());
    report.valid += part.report.valid;
    report.invalid += part.report.invalid;
    report.flagged += part.report.flagged;
    report.records.insert(report.records.end(), std::make_move_iterator(part.report.records.begin()),
                          std::make_move_iterator(part.report.records.end()));
  }
  batch.values.resize(batch.rows * cols);
  batch.integers.resize(batch.rows * cols);
  batch.text.resize(batch.rows * cols);
  if (options.policy == BatchPolicy::kFailBatch && report.invalid > 0) {
    const auto& first = *std::find_if(report.records.begin(), report.records.end(),
                                      [](const auto& r) { return !r.second.ok(); });
    return invalid_argument(std::to_string(report.invalid) + " of " + std::to_string(records.size()) +
                            " records are invalid; record " + std::to_string(first.first) + ": " +
                            first.second.status().message());
  }
  return {};
}

}  // namespace ember
