// Batches: N records validated into one matrix, in parts on the host's executor. The
// records come as JSON texts or column by column.
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

// Validates records [first, last) into consecutive rows from `at` (valid records only:
// an invalid one is overwritten by the record after it), `one(i, out, report)` checking
// record i. Appends to `source_index` and `report`, whose indices are positions among
// all the records. Returns the number of rows written.
template <typename One>
std::size_t validate_part(const SchemaImpl& impl, std::size_t first, std::size_t last, One&& one, RowOut at,
                          std::vector<std::size_t>& source_index, BatchReport& report) {
  const std::size_t cols = impl.features.size();
  std::size_t rows = 0;
  ValidationReport record;
  for (std::size_t i = first; i < last; ++i) {
    const RowOut out{at.values + rows * cols, at.integers + rows * cols, at.text + rows * cols};
    clear_row(impl, out);
    record.clear();
    if (!one(i, out, record).ok()) {
      ++report.invalid;
      report.records.emplace_back(i, record);
      continue;
    }
    ++report.valid;
    if (!record.flagged().empty()) {
      ++report.flagged;
      report.records.emplace_back(i, record);
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

// Validates N records into `batch` in up to BatchOptions::threads parts: the caller's
// thread takes the first, the executor the others. `make_checker(on_caller)` gives the
// part its `one(i, out, report)` (a part off the caller's thread brings its own parser).
template <typename MakeChecker>
Status validate_in_parts(const SchemaImpl& impl, std::size_t n, FeatureBatch& batch, BatchReport& report,
                         const BatchOptions& options, MakeChecker&& make_checker) {
  const std::size_t cols = impl.features.size();
  std::size_t threads = options.executor == nullptr ? 1
                        : options.threads == 0     ? options.executor->concurrency() + 1
                                                   : options.threads;
  threads = std::max<std::size_t>(1, std::min(threads, n / kMinRecordsPerThread));
  const std::size_t chunk = (n + threads - 1) / threads;
  // Every part writes its rows where its records start; rows are closed up afterwards.
  batch.cols = cols;
  batch.values.resize(n * cols);
  batch.integers.resize(n * cols);
  batch.text.resize(n * cols);
  batch.source_index.clear();
  report = BatchReport{};
  const auto rows_from = [&](std::size_t first) {
    return RowOut{batch.values.data() + first * cols, batch.integers.data() + first * cols,
                  batch.text.data() + first * cols};
  };
  std::vector<Part> parts(threads - 1);
  // Parts posted to the executor; the caller waits for them before it closes up.
  std::mutex mutex;
  std::condition_variable done;
  std::size_t pending = 0;
  for (std::size_t t = 0; t < parts.size(); ++t) {
    Part& part = parts[t];
    part.first = (t + 1) * chunk;
    const std::size_t last = std::min(n, part.first + chunk);
    auto work = [&impl, &make_checker, &rows_from, &part, last] {
      auto one = make_checker(false);
      part.rows = validate_part(impl, part.first, last, one, rows_from(part.first), part.source_index, part.report);
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
    auto one = make_checker(true);
    batch.rows = validate_part(impl, 0, std::min(n, chunk), one, rows_from(0), batch.source_index, report);
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
    return invalid_argument(std::to_string(report.invalid) + " of " + std::to_string(n) +
                            " records are invalid; record " + std::to_string(first.first) + ": " +
                            first.second.status().message());
  }
  return {};
}

// One JSON record.
Status validate_text(const SchemaImpl& impl, std::string_view text, JsonParser& parser, RowOut out,
                     ValidationReport& report) {
  auto value = parser.parse(text);
  if (!value.ok()) {
    report.add_error({"", "", "json", value.status().message()}, impl.options.max_errors);
    return value.status();
  }
  return validate_parsed(impl, *value, out, report);
}

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
  const detail::SchemaImpl& impl = *impl_;
  return detail::validate_in_parts(impl, records.size(), batch, report, options, [&](bool on_caller) {
    // A part off the caller's thread parses with its own parser, of the same limits.
    std::optional<JsonParser> own;
    if (!on_caller) own.emplace(parser.limits());
    return [&impl, records, &parser, own = std::move(own)](std::size_t i, detail::RowOut out,
                                                           ValidationReport& one) mutable {
      return detail::validate_text(impl, records[i], own ? *own : parser, out, one);
    };
  });
}

Status Schema::validate_batch(const Columns& columns, FeatureBatch& batch, BatchReport& report,
                              const BatchOptions& options) const {
  const detail::SchemaImpl& impl = *impl_;
  if (!accepts_columns()) {
    return failed_precondition(
        "this schema checks more than scalar features (nested objects, arrays or combinators): give its "
        "records as JSON");
  }
  std::vector<detail::ColumnIn> resolved;
  resolved.reserve(columns.columns.size());
  for (const ColumnView& c : columns.columns) {
    // As JSON refuses a duplicate or over-long key in every record: refused once here.
    if (c.name.size() > impl.options.limits.max_string_bytes) {
      return invalid_argument("a column name of " + std::to_string(c.name.size()) + " bytes is over the limit of " +
                              std::to_string(impl.options.limits.max_string_bytes) + " bytes");
    }
    if (std::any_of(resolved.begin(), resolved.end(), [&](const detail::ColumnIn& r) { return r.view.name == c.name; })) {
      return invalid_argument("column '" + std::string(c.name) + "' appears twice");
    }
    const std::size_t size = detail::column_type_size(c.type);
    if (size == 0) return invalid_argument("column '" + std::string(c.name) + "': unknown type");
    if (c.data == nullptr && columns.rows > 0) return invalid_argument("column '" + std::string(c.name) + "': no data");
    detail::ColumnIn in{c, feature_index(c.name)};
    if (in.view.stride == 0) in.view.stride = static_cast<std::ptrdiff_t>(size);
    resolved.push_back(in);
  }
  return detail::validate_in_parts(impl, columns.rows, batch, report, options, [&](bool) {
    return [&impl, &resolved](std::size_t i, detail::RowOut out, ValidationReport& one) {
      return detail::validate_columns_row(impl, resolved, i, out, one);
    };
  });
}

}  // namespace ember
