// ember score's output: the layout of a prediction row, CSV predictions, the reject
// file's JSON lines, and the text of numbers and keys.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <utility>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "score_io.hpp"

namespace ember_cli::score {

namespace {

using ember::Cell;
using ember::Result;
using ember::Status;

class CsvWriter final : public Writer {
 public:
  CsvWriter(Layout layout, PartialFile file) : layout_(std::move(layout)), file_(std::move(file)) {}

  Status write_header() {
    std::string line;
    Cell c;
    c.type = Cell::Type::kString;
    const auto column = [&](std::string_view name) {
      if (!line.empty()) line += ',';
      c.text = name;
      append_csv_cell(line, c);
    };
    for (const auto& k : layout_.keys) column(k);
    for (const auto& o : layout_.outputs) column(o.name);
    if (layout_.served_by) column("served_by");
    line += '\n';
    return file_.append(line);
  }

  Status format(Chunk& chunk) const override {
    std::string& out = chunk.out_text;
    out.clear();
    const auto rows = answered_rows(chunk);
    std::vector<const ember::Tensor*> tensors;
    for (const auto& e : chunk.prediction.outputs) tensors.push_back(&e.tensor);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (rows[r] < 0) continue;
      const auto i = static_cast<std::size_t>(rows[r]);
      bool first = true;
      for (std::size_t k = 0; k < layout_.keys.size(); ++k) {
        if (!first) out += ',';
        first = false;
        append_csv_cell(out, chunk.keys[k][r]);
      }
      for (const auto& col : layout_.outputs) {
        if (!first) out += ',';
        first = false;
        if (col.tensor >= tensors.size()) return ember::internal_error("the model answered fewer outputs than it declares");
        append_element(out, *tensors[col.tensor], i * col.per_row + col.offset);
      }
      if (layout_.served_by) {
        if (!first) out += ',';
        out += chunk.prediction.rows[i].served_by;
      }
      out += '\n';
    }
    return {};
  }

  Status write(const Chunk& chunk) override { return file_.append(chunk.out_text); }
  Result<std::uint64_t> sync() override { return file_.sync(); }
  Status truncate(std::uint64_t position) override { return file_.truncate(position); }
  Status finish() override { return file_.finish(); }

 private:
  static void append_element(std::string& out, const ember::Tensor& t, std::size_t i) {
    switch (t.dtype()) {
      case ember::DType::kFloat32: append_number(out, t.values<float>()[i]); return;
      case ember::DType::kFloat64: append_number(out, t.values<double>()[i]); return;
      case ember::DType::kInt64: out += std::to_string(t.values<std::int64_t>()[i]); return;
      case ember::DType::kInt32: out += std::to_string(t.values<std::int32_t>()[i]); return;
      case ember::DType::kInt8: out += std::to_string(t.values<std::int8_t>()[i]); return;
      case ember::DType::kUInt8: out += std::to_string(t.values<std::uint8_t>()[i]); return;
      case ember::DType::kBool: out += t.values<bool>()[i] ? "true" : "false"; return;
      default: append_number(out, t.at(i).value_or(NAN)); return;
    }
  }

  Layout layout_;
  PartialFile file_;
};

}  // namespace

void append_number(std::string& out, double x) {
  if (std::isnan(x)) {
    out += "NaN";
    return;
  }
  if (std::isinf(x)) {
    out += x > 0 ? "Infinity" : "-Infinity";
    return;
  }
  char buf[64];
  const char* end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_number(std::string& out, float x) {
  if (std::isnan(x) || std::isinf(x)) {
    append_number(out, static_cast<double>(x));
    return;
  }
  char buf[64];
  const char* end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  out.append(buf, static_cast<std::size_t>(end - buf));
}

void append_csv_cell(std::string& out, const Cell& cell) {
  switch (cell.type) {
    case Cell::Type::kAbsent:
    case Cell::Type::kNull: return;
    case Cell::Type::kBool: out += cell.integer != 0 ? "true" : "false"; return;
    case Cell::Type::kInteger: out += std::to_string(cell.integer); return;
    case Cell::Type::kUnsigned: out += std::to_string(cell.unsigned_integer); return;
    case Cell::Type::kNumber: append_number(out, cell.number); return;
    case Cell::Type::kString: break;
  }
  const std::string_view t = cell.text;
  if (t.find_first_of(",\"\n\r\t") == std::string_view::npos && (t.empty() || (t.front() != ' ' && t.back() != ' '))) {
    out += t;
    return;
  }
  out += '"';
  for (char c : t) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

Layout output_layout(const ember::Model& model, std::vector<std::string> keys, bool served_by) {
  Layout layout;
  layout.keys = std::move(keys);
  layout.served_by = served_by;
  const auto& specs = model.chain().outputs();
  for (std::size_t t = 0; t < specs.size(); ++t) {
    std::size_t per_row = 1;
    for (auto d : specs[t].row_shape) per_row *= static_cast<std::size_t>(std::max<std::int64_t>(d, 0));
    for (std::size_t i = 0; i < per_row; ++i) {
      layout.outputs.push_back(
          {per_row == 1 ? specs[t].name : specs[t].name + "_" + std::to_string(i), t, i, per_row, specs[t].dtype});
    }
  }
  return layout;
}

Result<std::string> format_of(const std::filesystem::path& path, std::string_view what) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".csv") return std::string("csv");
  if (ext == ".tsv") return std::string("tsv");
  if (ext == ".jsonl" || ext == ".ndjson" || ext == ".json") return std::string("jsonl");
  if (ext == ".parquet" || ext == ".pq") return std::string("parquet");
  return ember::invalid_argument(std::string(what) + " '" + path.string() +
                                 "': unknown format (by extension: .csv, .tsv, .jsonl, .parquet)");
}

std::vector<std::ptrdiff_t> answered_rows(const Chunk& chunk) {
  std::vector<std::ptrdiff_t> rows(chunk.rows, -1);
  const auto& p = chunk.prediction;
  const std::size_t n = std::min(p.source_index.size(), p.rows.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t r = p.source_index[i];
    if (r < rows.size() && p.rows[i].status.ok() && chunk.refused[r].empty()) rows[r] = static_cast<std::ptrdiff_t>(i);
  }
  return rows;
}

void format_rejects(Chunk& chunk, const Layout& layout) {
  const auto rows = answered_rows(chunk);
  const auto& p = chunk.prediction;
  std::vector<const ember::ValidationReport*> reports(chunk.rows, nullptr);
  for (const auto& [r, report] : p.validation.records) {
    if (r < reports.size() && !report.ok()) reports[r] = &report;
  }
  std::vector<const ember::Status*> failures(chunk.rows, nullptr);
  for (std::size_t i = 0; i < std::min(p.source_index.size(), p.rows.size()); ++i) {
    if (!p.rows[i].status.ok() && p.source_index[i] < chunk.rows) failures[p.source_index[i]] = &p.rows[i].status;
  }
  chunk.reject_text.clear();
  chunk.scored = 0;
  chunk.rejected = 0;
  for (std::size_t r = 0; r < chunk.rows; ++r) {
    if (rows[r] >= 0) {
      ++chunk.scored;
      continue;
    }
    ++chunk.rejected;
    nlohmann::ordered_json line{{"row", chunk.first_row + r}};
    nlohmann::ordered_json keys = nlohmann::ordered_json::object();
    for (std::size_t k = 0; k < layout.keys.size(); ++k) {
      const Cell& c = chunk.keys[k][r];
      keys[layout.keys[k]] = c.type == Cell::Type::kString ? nlohmann::ordered_json(std::string(c.text)) : nullptr;
    }
    line["keys"] = std::move(keys);
    nlohmann::ordered_json errors = nlohmann::ordered_json::array();
    const auto add = [&](std::string_view path, std::string_view message) {
      errors.push_back({{"path", std::string(path)}, {"message", std::string(message)}});
    };
    if (!chunk.refused[r].empty()) {
      add("", chunk.refused[r]);
    } else if (reports[r] != nullptr) {
      for (const auto& e : reports[r]->errors()) add(e.instance_path, e.message);
    } else if (failures[r] != nullptr) {
      add("", failures[r]->to_string());
    } else {
      add("", chunk.status.ok() ? "not scored" : chunk.status.to_string());
    }
    line["errors"] = std::move(errors);
    chunk.reject_text += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    chunk.reject_text += '\n';
  }
}

Result<PartialFile> PartialFile::open(const std::filesystem::path& path, bool resume) {
  const std::string partial = path.string() + ".partial";
  std::FILE* file = std::fopen(partial.c_str(), resume ? "r+b" : "wb");
  if (file == nullptr) return ember::invalid_argument("cannot write '" + partial + "': " + std::strerror(errno));
  return PartialFile(path, file);
}

PartialFile::PartialFile(PartialFile&& other) noexcept
    : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}

PartialFile::~PartialFile() {
  if (file_ != nullptr) std::fclose(file_);
}

Status PartialFile::append(std::string_view text) {
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), file_) != text.size()) return error();
  return {};
}

Result<std::uint64_t> PartialFile::sync() {
  if (std::fflush(file_) != 0 || ::fdatasync(::fileno(file_)) != 0) return error();
  const long at = std::ftell(file_);
  if (at < 0) return error();
  return static_cast<std::uint64_t>(at);
}

Status PartialFile::truncate(std::uint64_t length) {
  if (std::fflush(file_) != 0 || ::ftruncate(::fileno(file_), static_cast<off_t>(length)) != 0 ||
      std::fseek(file_, static_cast<long>(length), SEEK_SET) != 0) {
    return error();
  }
  return {};
}

Status PartialFile::finish() {
  if (auto st = sync(); !st.ok()) return st.status();
  std::fclose(std::exchange(file_, nullptr));
  std::error_code ec;
  std::filesystem::rename(path_.string() + ".partial", path_, ec);
  if (ec) return ember::invalid_argument("cannot write '" + path_.string() + "': " + ec.message());
  return {};
}

Status PartialFile::error() const {
  return ember::invalid_argument("cannot write '" + path_.string() + ".partial': " + std::strerror(errno));
}

Result<std::unique_ptr<Writer>> open_csv_writer(const std::filesystem::path& path, const Layout& layout, bool resume) {
  auto file = PartialFile::open(path, resume);
  if (!file.ok()) return file.status();
  auto writer = std::make_unique<CsvWriter>(layout, std::move(file).value());
  if (!resume) {
    if (auto st = writer->write_header(); !st.ok()) return st;
  }
  return std::unique_ptr<Writer>(std::move(writer));
}

}  // namespace ember_cli::score
