#pragma once

// ember score's files: readers that cut an input into chunks of records (CSV, JSON
// lines, Parquet) and writers of the predictions (CSV, Parquet) and of the rejected
// records (JSON lines). Reading a chunk is sequential; turning it into records
// (decode) and its answer into output (format) run on any worker thread.

#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ember/model.hpp"
#include "ember/schema.hpp"
#include "ember/status.hpp"

namespace ember_cli::score {

/// The type a key column has in the output.
enum class KeyType : std::uint8_t { kString, kInt64, kFloat64, kBool };

/// One column of the output: an element of a model output, or the stage that answered.
struct OutputColumn {
  std::string name;          ///< "output", or "probs_0", "probs_1", ... for several values per row
  std::size_t tensor = 0;    ///< index among the chain's outputs
  std::size_t offset = 0;    ///< element within a row of that output
  std::size_t per_row = 1;   ///< elements per row of that output
  ember::DType dtype = ember::DType::kFloat32;
};

/// What every output row holds: the key columns, then the model's outputs.
struct Layout {
  std::vector<std::string> keys;
  std::vector<KeyType> key_types;
  std::vector<OutputColumn> outputs;
  bool served_by = false;  ///< a last column naming the stage that answered
};

/// The output columns of a model's answers.
Layout output_layout(const ember::Model& model, std::vector<std::string> keys, bool served_by);

/// A chunk of the input, then its records, then its answer.
struct Chunk {
  std::size_t index = 0;
  std::size_t first_row = 0;         ///< index of its first record in the input
  std::size_t rows = 0;
  std::uint64_t end_position = 0;    ///< the reader's position after it (bytes, or rows)
  std::size_t first_line = 0;        ///< text inputs: the line its first record starts on
  // Read (sequentially):
  std::string text;                  ///< CSV or JSON lines, with padding after them
  std::shared_ptr<void> batch;       ///< Parquet: the record batch
  // Decoded (by a worker):
  bool json = false;                                   ///< the records are JSON texts, not columns
  std::vector<std::string_view> records;               ///< JSON texts
  std::vector<std::vector<ember::Cell>> cells;         ///< per column given as cells
  std::vector<std::vector<double>> numbers;            ///< per column given as float64
  std::vector<ember::ColumnView> views;                ///< the record's columns
  std::vector<std::vector<ember::Cell>> keys;          ///< per key column, per record
  std::vector<std::string> refused;                    ///< per record: why it could not be read ("" if it could)
  std::deque<std::string> strings;                     ///< text the cells view that the input does not hold
  // Answered:
  ember::BatchPrediction prediction;
  ember::Status status;
  std::string out_text;              ///< CSV rows
  std::shared_ptr<void> out_batch;   ///< Parquet: the output batch
  std::string reject_text;           ///< JSON lines
  std::size_t scored = 0;
  std::size_t rejected = 0;
};

/// A file written as `path` + ".partial" and renamed to `path` by finish(), so that
/// only a complete file appears under its name. Appends; sync() makes what was written
/// durable and returns its length, truncate() cuts back to such a length (on resume).
class PartialFile {
 public:
  /// Opens `path`.partial: empty, or with `resume` as an interrupted run left it.
  static ember::Result<PartialFile> open(const std::filesystem::path& path, bool resume);
  PartialFile(PartialFile&& other) noexcept;
  PartialFile& operator=(PartialFile&&) = delete;
  ~PartialFile();
  ember::Status append(std::string_view text);
  ember::Result<std::uint64_t> sync();
  ember::Status truncate(std::uint64_t length);
  ember::Status finish();

 private:
  PartialFile(std::filesystem::path path, std::FILE* file) : path_(std::move(path)), file_(file) {}
  [[nodiscard]] ember::Status error() const;
  std::filesystem::path path_;
  std::FILE* file_;
};

/// Reads an input file chunk by chunk.
class Reader {
 public:
  virtual ~Reader() = default;
  /// The next chunk of up to `max_rows` records; false at the end of the input.
  /// Sequential. InvalidArgument naming the line for input that cannot be cut into
  /// records (an unterminated quote, a line over the limit).
  virtual ember::Result<bool> read(std::size_t max_rows, Chunk& chunk) = 0;
  /// Fills chunk.records or chunk.views, chunk.keys and chunk.refused. Any thread.
  virtual ember::Status decode(Chunk& chunk) const = 0;
  /// Goes on after `position` (a chunk's end_position), `rows` records in.
  virtual ember::Status seek(std::uint64_t position, std::size_t rows) = 0;
  /// The input's size in positions (bytes, or rows when rows_known()).
  [[nodiscard]] virtual std::uint64_t size() const = 0;
  [[nodiscard]] virtual bool rows_known() const = 0;
  /// The output type of each key column.
  [[nodiscard]] virtual std::vector<KeyType> key_types() const = 0;
};

/// Writes the predictions.
class Writer {
 public:
  virtual ~Writer() = default;
  /// Turns a chunk's answer into output (chunk.out_text or chunk.out_batch). Any thread.
  virtual ember::Status format(Chunk& chunk) const = 0;
  /// Appends a formatted chunk. Sequential, in input order.
  virtual ember::Status write(const Chunk& chunk) = 0;
  /// Makes everything written durable; returns the position to resume from.
  virtual ember::Result<std::uint64_t> sync() = 0;
  /// Drops what was written after `position` (a value sync() returned).
  virtual ember::Status truncate(std::uint64_t position) = 0;
  /// Completes the output file (renamed into place).
  virtual ember::Status finish() = 0;
};

struct ReaderOptions {
  std::filesystem::path path;
  std::string format;                 ///< "csv", "tsv", "jsonl", "parquet"
  std::vector<std::string> keys;
  std::size_t max_record_bytes = std::size_t{1} << 20;
};

/// "csv", "tsv", "jsonl" or "parquet" from a file's extension (.json and .ndjson are
/// JSON lines); InvalidArgument for any other.
ember::Result<std::string> format_of(const std::filesystem::path& path, std::string_view what);

ember::Result<std::unique_ptr<Reader>> open_text_reader(const ReaderOptions& options, const ember::Schema& schema);
/// CSV output: `path` + ".partial" is written, renamed to `path` by finish(). `resume`
/// keeps what an interrupted run wrote (truncate() then cuts it to its last sync).
ember::Result<std::unique_ptr<Writer>> open_csv_writer(const std::filesystem::path& path, const Layout& layout,
                                                       bool resume);

/// Whether this ember was built with Parquet (Apache Arrow).
bool parquet_available();
ember::Result<std::unique_ptr<Reader>> open_parquet_reader(const ReaderOptions& options, const ember::Schema& schema);
/// Parquet output: each chunk a file in `path` + ".parts/", joined into `path` by
/// finish() (one row group per chunk).
ember::Result<std::unique_ptr<Writer>> open_parquet_writer(const std::filesystem::path& path, const Layout& layout,
                                                           bool resume);

/// The rejected records of a chunk as JSON lines into chunk.reject_text, and the counts.
/// Any thread.
void format_rejects(Chunk& chunk, const Layout& layout);
/// For each record of a chunk: the output row that answers it, or -1.
std::vector<std::ptrdiff_t> answered_rows(const Chunk& chunk);

/// Appends a key cell as CSV text (quoted when needed).
void append_csv_cell(std::string& out, const ember::Cell& cell);
/// Appends a number in its shortest form that reads back to the same value.
void append_number(std::string& out, double x);
void append_number(std::string& out, float x);

}  // namespace ember_cli::score
