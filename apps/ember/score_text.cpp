// ember score's text inputs: CSV and JSON lines, cut into chunks and read into records.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include <simdjson.h>

#include "score_io.hpp"

namespace ember_cli::score {

namespace {

using ember::Cell;
using ember::ColumnView;
using ember::FeatureKind;
using ember::Result;
using ember::Status;

using File = std::unique_ptr<std::FILE, int (*)(std::FILE*)>;

constexpr std::size_t kPadding = simdjson::SIMDJSON_PADDING;

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

bool is_na(std::string_view t) {
  return t.empty() || t == "NA" || t == "NaN" || t == "nan" || t == "null" || t == "NULL" || t == "None" ||
         t == "N/A" || t == "n/a";
}

std::string_view trim(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  return t;
}

// A CSV field as the value of a feature of kind `kind` (see docs/scoring.md).
Cell csv_cell(std::string_view text, FeatureKind kind) {
  Cell c;
  if (kind == FeatureKind::kCategory || kind == FeatureKind::kText) {
    if (text.empty()) {
      c.type = Cell::Type::kNull;
    } else {
      c.type = Cell::Type::kString;
      c.text = text;
    }
    return c;
  }
  const std::string_view t = trim(text);
  if (is_na(t)) {
    c.type = Cell::Type::kNull;
    return c;
  }
  if (kind == FeatureKind::kBoolean) {
    if (t == "true" || t == "True" || t == "TRUE" || t == "1") {
      c.type = Cell::Type::kBool;
      c.integer = 1;
      return c;
    }
    if (t == "false" || t == "False" || t == "FALSE" || t == "0") {
      c.type = Cell::Type::kBool;
      c.integer = 0;
      return c;
    }
  } else {
    const char* end = t.data() + t.size();
    std::int64_t i = 0;
    if (auto r = std::from_chars(t.data(), end, i); r.ec == std::errc() && r.ptr == end) {
      c.type = Cell::Type::kInteger;
      c.integer = i;
      return c;
    }
    double d = 0;
    if (auto r = std::from_chars(t.data(), end, d); r.ec == std::errc() && r.ptr == end) {
      c.type = Cell::Type::kNumber;
      c.number = d;
      return c;
    }
  }
  c.type = Cell::Type::kString;  // validation says what is wrong with it
  c.text = text;
  return c;
}

// Splits one CSV record (RFC 4180, quotes may span lines) into fields, unquoting in
// place. False for a quote in the middle of an unquoted field's text.
bool split_record(char* begin, char* end, char sep, std::vector<std::string_view>& fields) {
  fields.clear();
  char* p = begin;
  for (;;) {
    if (p < end && *p == '"') {
      char* out = p;
      char* q = p + 1;
      for (;;) {
        if (q >= end) return false;
        if (*q == '"') {
          if (q + 1 < end && q[1] == '"') {
            *out++ = '"';
            q += 2;
            continue;
          }
          break;
        }
        *out++ = *q++;
      }
      fields.emplace_back(p, static_cast<std::size_t>(out - p));
      p = q + 1;
      if (p < end && *p != sep) return false;
    } else {
      char* stop = static_cast<char*>(std::memchr(p, sep, static_cast<std::size_t>(end - p)));
      if (stop == nullptr) stop = end;
      fields.emplace_back(p, static_cast<std::size_t>(stop - p));
      p = stop;
    }
    if (p >= end) return true;
    ++p;  // the separator
    if (p == end) {
      fields.emplace_back();
      return true;
    }
  }
}

// Cuts a text file into chunks of whole records. For CSV a newline inside quotes does
// not end a record.
class TextReader final : public Reader {
 public:
  TextReader(ReaderOptions options, const ember::Schema& schema, File file, std::uint64_t size, bool csv)
      : options_(std::move(options)), schema_(schema), file_(std::move(file)), size_(size), csv_(csv),
        sep_(options_.format == "tsv" ? '\t' : ',') {
    for (std::size_t f = 0; f < schema_.features().size(); ++f) feature_index_.emplace(schema_.features()[f].name, f);
  }

  Status open() {
    if (!csv_) return {};
    // The header.
    Chunk header;
    auto got = read(1, header);
    if (!got.ok()) return got.status();
    if (!*got) return invalid_argument_at(1, "the file is empty: a CSV file starts with a header of column names");
    std::string_view text(header.text.data(), header.text.size() - kPadding);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    while (!text.empty() && (text.front() == '\n' || text.front() == '\r')) text.remove_prefix(1);
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // a byte order mark (spreadsheets write one)
    header_text_.assign(text);
    std::vector<std::string_view> names;
    if (!split_record(header_text_.data(), header_text_.data() + header_text_.size(), sep_, names)) {
      return invalid_argument_at(1, "malformed header");
    }
    std::map<std::string_view, std::size_t> seen;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (!seen.emplace(names[i], i).second) {
        return invalid_argument_at(1, "column '" + std::string(names[i]) + "' appears twice in the header");
      }
      if (auto it = feature_index_.find(names[i]); it != feature_index_.end()) {
        feature_columns_.push_back({i, schema_.features()[it->second].kind, names[i]});
      }
    }
    for (const auto& key : options_.keys) {
      auto it = seen.find(key);
      if (it == seen.end()) return missing_key(key, names);
      key_columns_.push_back(it->second);
    }
    columns_ = names.size();
    rows_ = 0;
    return {};
  }

  Result<bool> read(std::size_t max_rows, Chunk& chunk) override {
    chunk.text.clear();
    chunk.rows = 0;
    chunk.first_line = line_ + 1;
    std::size_t scan = 0;  // bytes of buf_ already cut into records
    std::size_t record_start = 0;
    bool quoted = false;
    for (;;) {
      if (scan == buf_.size()) {
        if (eof_) break;
        const std::size_t old = buf_.size();
        buf_.resize(old + kBlock);
        const std::size_t n = std::fread(buf_.data() + old, 1, kBlock, file_.get());
        buf_.resize(old + n);
        if (n == 0) {
          if (std::ferror(file_.get())) return ember::data_loss("reading '" + options_.path.string() + "' failed");
          eof_ = true;
          if (record_start < buf_.size()) {  // a last record without a newline
            if (quoted) return invalid_argument_at(line_ + 1, "a quoted field is never closed");
            buf_.push_back('\n');
          }
          continue;
        }
      }
      const char* base = buf_.data();
      const auto* nl = static_cast<const char*>(std::memchr(base + scan, '\n', buf_.size() - scan));
      const std::size_t stop = nl ? static_cast<std::size_t>(nl - base) : buf_.size();
      if (csv_) quoted ^= (std::count(base + scan, base + stop, '"') & 1) != 0;
      if (nl == nullptr) {
        scan = stop;
        if (scan - record_start > options_.max_record_bytes) return too_long();
        continue;
      }
      scan = stop + 1;
      ++line_;
      if (quoted) {
        if (scan - record_start > options_.max_record_bytes) return too_long();
        continue;
      }
      if (scan - record_start > options_.max_record_bytes + 1) return too_long();
      if (!is_blank(std::string_view(base + record_start, scan - 1 - record_start))) ++chunk.rows;
      record_start = scan;
      if (chunk.rows == max_rows) break;
    }
    if (record_start == 0) return false;
    chunk.text.reserve(record_start + kPadding);
    chunk.text.assign(buf_, 0, record_start);
    chunk.text.append(kPadding, '\0');
    buf_.erase(0, record_start);
    position_ += record_start;
    chunk.first_row = rows_;
    rows_ += chunk.rows;
    chunk.end_position = position_;
    return true;
  }

  Status decode(Chunk& chunk) const override {
    chunk.refused.assign(chunk.rows, std::string());
    chunk.keys.assign(options_.keys.size(), std::vector<Cell>(chunk.rows));
    char* p = chunk.text.data();
    char* const end = p + (chunk.text.size() - kPadding);
    return csv_ ? decode_csv(chunk, p, end) : decode_json(chunk, p, end);
  }

  Status seek(std::uint64_t position, std::size_t rows) override {
    // Count the lines before `position` for messages, then go there.
    if (std::fseek(file_.get(), 0, SEEK_SET) != 0) return ember::data_loss("cannot seek in '" + options_.path.string() + "'");
    std::vector<char> block(kBlock);
    std::uint64_t left = position;
    line_ = 0;
    while (left > 0) {
      const std::size_t n = std::fread(block.data(), 1, std::min<std::uint64_t>(left, kBlock), file_.get());
      if (n == 0) return ember::data_loss("'" + options_.path.string() + "' is shorter than the interrupted run read");
      line_ += static_cast<std::size_t>(std::count(block.data(), block.data() + n, '\n'));
      left -= n;
    }
    buf_.clear();
    eof_ = false;
    position_ = position;
    rows_ = rows;
    return {};
  }

  [[nodiscard]] std::uint64_t size() const override { return size_; }
  [[nodiscard]] bool rows_known() const override { return false; }
  [[nodiscard]] std::vector<KeyType> key_types() const override {
    return std::vector<KeyType>(options_.keys.size(), KeyType::kString);
  }

 private:
  static constexpr std::size_t kBlock = std::size_t{1} << 20;

  struct FeatureColumn {
    std::size_t column;
    FeatureKind kind;
    std::string_view name;  // in header_text_
  };

  Status invalid_argument_at(std::size_t line, const std::string& what) const {
    return ember::invalid_argument(options_.path.filename().string() + ":" + std::to_string(line) + ": " + what);
  }
  Status too_long() const {
    return invalid_argument_at(line_ + 1, "a record longer than " + std::to_string(options_.max_record_bytes) +
                                              " bytes (--max-record-bytes)" + (csv_ ? "; an unclosed quote?" : ""));
  }
  Status missing_key(const std::string& key, const std::vector<std::string_view>& names) const {
    std::string have;
    for (const auto& n : names) have += (have.empty() ? "" : ", ") + std::string(n);
    return ember::invalid_argument("key column '" + key + "' is not in " + options_.path.filename().string() +
                                   " (its columns: " + have + ")");
  }

  // CSV: each feature's fields, then each feature as a column: numbers as float64 (NaN
  // where missing) when every field of the chunk reads exactly as one, else cells.
  Status decode_csv(Chunk& chunk, char* p, char* end) const {
    const std::size_t nf = feature_columns_.size();
    thread_local std::vector<std::string_view> texts;  // row-major, rows x features
    texts.assign(chunk.rows * nf, std::string_view());
    std::vector<std::string_view> fields;
    std::size_t r = 0;
    bool quoted = false;
    char* start = p;
    while (p < end) {
      char* nl = static_cast<char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (nl == nullptr) nl = end;
      quoted ^= (std::count(static_cast<const char*>(p), static_cast<const char*>(nl), '"') & 1) != 0;
      p = nl + 1;
      if (quoted) continue;
      char* stop = nl;
      if (stop > start && stop[-1] == '\r') --stop;
      if (is_blank(std::string_view(start, static_cast<std::size_t>(stop - start)))) {
        start = p;
        continue;
      }
      if (!split_record(start, stop, sep_, fields)) {
        chunk.refused[r] = "malformed CSV: text after the closing quote of a field";
      } else if (fields.size() != columns_) {
        chunk.refused[r] = "has " + std::to_string(fields.size()) + " fields where the header has " + std::to_string(columns_);
      } else {
        for (std::size_t k = 0; k < nf; ++k) texts[r * nf + k] = fields[feature_columns_[k].column];
      }
      for (std::size_t k = 0; k < key_columns_.size(); ++k) {  // what can be read of a refused row too
        if (key_columns_[k] >= fields.size()) continue;
        Cell& c = chunk.keys[k][r];
        c.type = Cell::Type::kString;
        c.text = fields[key_columns_[k]];
      }
      ++r;
      start = p;
    }
    chunk.cells.resize(nf);
    chunk.numbers.resize(nf);
    chunk.views.resize(nf);
    for (std::size_t k = 0; k < nf; ++k) {
      const FeatureKind kind = feature_columns_[k].kind;
      if ((kind == FeatureKind::kNumber || kind == FeatureKind::kInteger) && numbers_of(texts, k, nf, chunk.numbers[k])) {
        chunk.views[k] = ColumnView{feature_columns_[k].name, ColumnView::Type::kFloat64, chunk.numbers[k].data(), 0};
        continue;
      }
      std::vector<Cell>& cells = chunk.cells[k];
      cells.resize(chunk.rows);
      for (std::size_t i = 0; i < chunk.rows; ++i) cells[i] = csv_cell(texts[i * nf + k], kind);
      chunk.views[k] = ColumnView{feature_columns_[k].name, ColumnView::Type::kCells, cells.data(), 0};
    }
    return {};
  }

  // Column k of `texts` as float64 (NaN where missing): false when a field is not a
  // number, or an integer a double cannot hold exactly (then cells say what it is).
  static bool numbers_of(const std::vector<std::string_view>& texts, std::size_t k, std::size_t nf,
                         std::vector<double>& out) {
    const std::size_t rows = nf == 0 ? 0 : texts.size() / nf;
    out.resize(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      const Cell c = csv_cell(texts[i * nf + k], FeatureKind::kNumber);
      if (c.type == Cell::Type::kNull) {
        out[i] = std::numeric_limits<double>::quiet_NaN();
      } else if (c.type == Cell::Type::kNumber && std::isfinite(c.number)) {
        out[i] = c.number;
      } else if (c.type == Cell::Type::kInteger && c.integer <= (std::int64_t{1} << 53) &&
                 c.integer >= -(std::int64_t{1} << 53)) {
        out[i] = static_cast<double>(c.integer);
      } else {
        return false;
      }
    }
    return true;
  }

  // JSON lines: as columns of the features (keys and other fields are not part of the
  // record, as in CSV and Parquet), or, for schemas that check more than flat features,
  // as the JSON texts themselves.
  Status decode_json(Chunk& chunk, char* p, char* end) const {
    chunk.json = !schema_.accepts_columns();
    chunk.records.clear();
    if (!chunk.json) {
      chunk.cells.assign(schema_.features().size(), std::vector<Cell>(chunk.rows));
      chunk.views.resize(schema_.features().size());
      for (std::size_t k = 0; k < chunk.views.size(); ++k) {
        chunk.views[k] = ColumnView{schema_.features()[k].name, ColumnView::Type::kCells, chunk.cells[k].data(), 0};
      }
    }
    simdjson::ondemand::parser parser;
    std::size_t r = 0;
    while (p < end) {
      char* nl = static_cast<char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (nl == nullptr) nl = end;
      std::string_view line(p, static_cast<std::size_t>(nl - p));
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const std::size_t capacity = static_cast<std::size_t>(end - p) + kPadding;
      p = nl + 1;
      if (is_blank(line)) continue;
      if (chunk.json) chunk.records.push_back(line);
      read_object(parser, line, capacity, chunk, r++);
    }
    return {};
  }

  // One JSON record's keys (as text: a string's characters, any other value's JSON)
  // and, in columns mode, its features as cells.
  void read_object(simdjson::ondemand::parser& parser, std::string_view line, std::size_t capacity, Chunk& chunk,
                   std::size_t r) const {
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser.iterate(line.data(), line.size(), capacity).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(object) != simdjson::SUCCESS) {
      if (!chunk.json) chunk.refused[r] = "not a JSON object";
      return;
    }
    auto error = simdjson::SUCCESS;
    for (auto field : object) {
      std::string_view name;
      simdjson::ondemand::value v;
      if ((error = field.unescaped_key().get(name)) != simdjson::SUCCESS ||
          (error = field.value().get(v)) != simdjson::SUCCESS) {
        break;
      }
      const auto key = std::find(options_.keys.begin(), options_.keys.end(), name);
      const auto feature = chunk.json ? feature_index_.end() : feature_index_.find(name);
      if (key == options_.keys.end() && feature == feature_index_.end()) continue;  // skipped unread
      Cell c;
      if ((error = cell_of(v, chunk, c)) != simdjson::SUCCESS) break;
      if (feature != feature_index_.end()) chunk.cells[feature->second][r] = c;
      if (key != options_.keys.end()) {
        Cell& k = chunk.keys[static_cast<std::size_t>(key - options_.keys.begin())][r];
        if (c.type == Cell::Type::kString || c.type == Cell::Type::kNull) {
          k = c;
        } else {
          k.type = Cell::Type::kString;
          k.text = trim(v.raw_json_token());
        }
      }
    }
    if (error != simdjson::SUCCESS && !chunk.json) {
      chunk.refused[r] = std::string("not valid JSON: ") + simdjson::error_message(error);
    }
  }

  // A JSON value as a cell. Nested values are refused: a flat schema's features are scalars.
  simdjson::error_code cell_of(simdjson::ondemand::value& v, Chunk& chunk, Cell& c) const {
    simdjson::ondemand::json_type type;
    if (auto e = v.type().get(type); e != simdjson::SUCCESS) return e;
    switch (type) {
      case simdjson::ondemand::json_type::null:
        c.type = Cell::Type::kNull;
        return v.is_null().error();
      case simdjson::ondemand::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b); e != simdjson::SUCCESS) return e;
        c.type = Cell::Type::kBool;
        c.integer = b ? 1 : 0;
        return simdjson::SUCCESS;
      }
      case simdjson::ondemand::json_type::string: {
        const std::string_view raw = trim(v.raw_json_token());
        if (raw.size() >= 2 && raw.find('\\') == std::string_view::npos) {
          c.text = raw.substr(1, raw.size() - 2);
        } else {
          std::string_view s;
          if (auto e = v.get_string().get(s); e != simdjson::SUCCESS) return e;
          c.text = chunk.strings.emplace_back(s);
        }
        c.type = Cell::Type::kString;
        return simdjson::SUCCESS;
      }
      case simdjson::ondemand::json_type::number: {
        simdjson::ondemand::number n;
        if (auto e = v.get_number().get(n); e != simdjson::SUCCESS) return e;
        if (n.is_int64()) {
          c.type = Cell::Type::kInteger;
          c.integer = n.get_int64();
        } else if (n.is_uint64()) {
          c.type = Cell::Type::kUnsigned;
          c.unsigned_integer = n.get_uint64();
        } else {
          c.type = Cell::Type::kNumber;
          c.number = n.as_double();
        }
        return simdjson::SUCCESS;
      }
      default:
        return simdjson::INCORRECT_TYPE;
    }
  }

  ReaderOptions options_;
  const ember::Schema& schema_;
  File file_;
  std::uint64_t size_;
  bool csv_;
  char sep_;
  std::map<std::string_view, std::size_t, std::less<>> feature_index_;
  std::string header_text_;
  std::vector<FeatureColumn> feature_columns_;
  std::vector<std::size_t> key_columns_;
  std::size_t columns_ = 0;
  std::string buf_;
  bool eof_ = false;
  std::uint64_t position_ = 0;
  std::size_t rows_ = 0;
  std::size_t line_ = 0;
};

}  // namespace

Result<std::unique_ptr<Reader>> open_text_reader(const ReaderOptions& options, const ember::Schema& schema) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(options.path, ec)) {
    return ember::not_found("cannot read '" + options.path.string() + "': no such file");
  }
  const auto size = std::filesystem::file_size(options.path, ec);
  if (ec) return ember::not_found("cannot read '" + options.path.string() + "': " + ec.message());
  File file(std::fopen(options.path.c_str(), "rb"), &std::fclose);
  if (!file) return ember::not_found("cannot read '" + options.path.string() + "': " + std::strerror(errno));
  const bool csv = options.format == "csv" || options.format == "tsv";
  if (csv && !schema.accepts_columns()) {
    return ember::failed_precondition(
        "the model's schema checks more than flat features (nested objects, arrays or combinators): "
        "give its records as JSON lines");
  }
  auto reader = std::make_unique<TextReader>(options, schema, std::move(file), size, csv);
  if (auto st = reader->open(); !st.ok()) return st;
  return std::unique_ptr<Reader>(std::move(reader));
}

}  // namespace ember_cli::score
