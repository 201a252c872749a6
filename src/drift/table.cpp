// Reading the schema's features from CSV or JSON lines into columns, without
// validation: drift is measured on the data as it arrives.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/files.hpp"
#include "core/json_pointer.hpp"
#include "ember/drift.hpp"

namespace ember {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Lines of a file, each at most `max_line` bytes (longer ones are an error, not a
// reason to buffer gigabytes).
class LineReader {
 public:
  LineReader(std::FILE* f, std::size_t max_line) : f_(f), max_line_(max_line) {}
  // 1: a line in `line`; 0: end of file; -1: a line longer than the limit.
  int next(std::string& line) {
    line.clear();
    bool any = false;
    for (;;) {
      if (pos_ == end_) {
        end_ = std::fread(buf_, 1, sizeof buf_, f_);
        pos_ = 0;
        if (end_ == 0) return any ? 1 : 0;
      }
      any = true;
      const char* start = buf_ + pos_;
      const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
      const std::size_t take = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
      if (line.size() + take > max_line_) return -1;
      line.append(start, take);
      pos_ += take;
      if (nl) {
        ++pos_;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return 1;
      }
    }
  }

 private:
  std::FILE* f_;
  std::size_t max_line_;
  char buf_[1 << 16];
  std::size_t pos_ = 0, end_ = 0;
};

// RFC 4180 fields of one line; false for an unterminated quote. `fields` keeps its
// strings' memory from line to line.
bool split_csv_line(const std::string& line, char sep, std::vector<std::string>& fields) {
  std::size_t n = 0;
  const auto next_field = [&]() -> std::string& {
    if (n == fields.size()) fields.emplace_back();
    std::string& f = fields[n++];
    f.clear();
    return f;
  };
  if (line.find('"') == std::string::npos) {  // no quotes: cut at each separator
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = line.find(sep, start);
      next_field().assign(line, start, end == std::string::npos ? std::string::npos : end - start);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    fields.resize(n);
    return true;
  }
  std::string* field = &next_field();
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        *field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        *field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == sep) {
      field = &next_field();
    } else {
      *field += c;
    }
  }
  fields.resize(n);
  return !quoted;
}

double parse_number(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return kNaN;
  if (text == "true" || text == "True") return 1;
  if (text == "false" || text == "False") return 0;
  double v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() ? v : kNaN;
}

std::optional<std::string> label_of_text(std::string_view text, bool boolean) {
  if (text.empty()) return std::nullopt;
  if (boolean) {
    if (text == "true" || text == "True" || text == "TRUE" || text == "1") return std::string("true");
    if (text == "false" || text == "False" || text == "FALSE" || text == "0") return std::string("false");
  }
  return std::string(text);
}

struct Target {
  std::size_t column;
  bool boolean;
  std::vector<std::string> tokens;  // JSON Pointer, unescaped
};


// Reads `path` record by record: a CSV file (.csv, .tsv) as its header, then rows of
// fields; anything else as JSON lines, each an object. Blank lines are skipped. An error
// (the file's, a line's, or a callback's) names the file and line.
template <typename OnHeader, typename OnRow, typename OnObject>
Status scan_file(const std::filesystem::path& path, const TableLimits& limits, OnHeader&& on_header, OnRow&& on_row,
                 OnObject&& on_object) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return not_found("cannot read '" + path.string() + "': no such file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return not_found("cannot read '" + path.string() + "': " + ec.message());
  if (size > limits.max_bytes) {
    return invalid_argument("'" + path.string() + "' is larger than " + std::to_string(limits.max_bytes) + " bytes");
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return not_found("cannot read '" + path.string() + "': " + std::strerror(errno));
  const auto ext = path.extension().string();
  const bool csv = ext == ".csv" || ext == ".tsv";
  const char sep = ext == ".tsv" ? '\t' : ',';
  LineReader reader(file.get(), limits.max_line_bytes);
  std::string line;
  std::vector<std::string> fields;
  bool header = csv;
  std::size_t line_no = 0, rows = 0;
  const auto at_line = [&](std::string_view what) {
    return invalid_argument(path.filename().string() + ":" + std::to_string(line_no) + ": " + std::string(what));
  };
  for (;;) {
    const int got = reader.next(line);
    if (got == 0) break;
    ++line_no;
    if (got < 0) return at_line("line longer than " + std::to_string(limits.max_line_bytes) + " bytes");
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Status st;
    if (csv) {
      if (!split_csv_line(line, sep, fields)) return at_line("unterminated quote");
      if (header) {
        header = false;
        st = on_header(fields);
        if (!st.ok()) return at_line(st.message());
        continue;
      }
      if (rows++ == limits.max_rows) return at_line("more than " + std::to_string(limits.max_rows) + " rows");
      st = on_row(fields);
    } else {
      if (detail::json_too_deep(line, 64)) return at_line("JSON nests deeper than 64 levels");
      const auto doc = nlohmann::json::parse(line, nullptr, false);
      if (doc.is_discarded()) return at_line("not valid JSON");
      if (!doc.is_object()) return at_line("not a JSON object");
      if (rows++ == limits.max_rows) return at_line("more than " + std::to_string(limits.max_rows) + " rows");
      st = on_object(doc);
    }
    if (!st.ok()) return at_line(st.message());
  }
  if (std::ferror(file.get())) return data_loss("reading '" + path.string() + "' failed");
  return {};
}

}  // namespace

Result<Table> read_table(const std::filesystem::path& path, const Schema& schema, const TableLimits& limits) {
  Table table;
  std::vector<Target> targets;
  for (const auto& f : schema.features()) {
    const auto kind = column_kind(f.kind);
    if (!kind) continue;
    targets.push_back({table.columns.size(), f.kind == FeatureKind::kBoolean, detail::json_pointer_tokens(f.pointer)});
    table.columns.push_back(Column{f.name, *kind, {}, {}});
  }
  std::vector<std::size_t> csv_index;  // target -> field
  const auto on_header = [&](const std::vector<std::string>& fields) -> Status {
    for (const auto& t : targets) {
      const auto& name = table.columns[t.column].name;
      const auto it = std::find(fields.begin(), fields.end(), name);
      if (it == fields.end()) return invalid_argument("the header has no column '" + name + "'");
      csv_index.push_back(static_cast<std::size_t>(it - fields.begin()));
    }
    return {};
  };
  const auto on_row = [&](const std::vector<std::string>& fields) -> Status {
    for (std::size_t k = 0; k < targets.size(); ++k) {
      Column& c = table.columns[targets[k].column];
      const std::string_view text = csv_index[k] < fields.size() ? std::string_view(fields[csv_index[k]]) : std::string_view();
      if (c.kind == ColumnKind::kNumerical) c.numbers.push_back(parse_number(text));
      else c.labels.push_back(label_of_text(text, targets[k].boolean));
    }
    ++table.rows;
    return {};
  };
  const auto on_object = [&](const nlohmann::json& doc) -> Status {
    for (const auto& t : targets) {
      const nlohmann::json* v = detail::json_at(doc, t.tokens);
      Column& c = table.columns[t.column];
      if (c.kind == ColumnKind::kNumerical) {
        double x = kNaN;
        if (v && v->is_number()) x = v->get<double>();
        else if (v && v->is_boolean()) x = v->get<bool>() ? 1 : 0;
        else if (v && v->is_string()) x = parse_number(v->get_ref<const std::string&>());
        c.numbers.push_back(x);
      } else {
        std::optional<std::string> label;
        if (v && v->is_string()) label = label_of_text(v->get_ref<const std::string&>(), t.boolean);
        else if (v && v->is_boolean()) label = v->get<bool>() ? "true" : "false";
        else if (v && v->is_number()) label = label_of_text(v->dump(), t.boolean);
        c.labels.push_back(std::move(label));
      }
    }
    ++table.rows;
    return {};
  };
  if (auto st = scan_file(path, limits, on_header, on_row, on_object); !st.ok()) return st;
  return table;
}

namespace {

// What one column has held so far, for infer_schema.
struct Seen {
  std::string name;
  bool numbers = true, booleans = true, any = false;
  std::set<std::string> labels;  // kept once the column is known not to be numbers
  bool too_many = false;
  bool relabel = false;  // numbers seen before it turned out not to be: read again
};

void see(Seen& c, std::string_view text, bool is_number, bool is_bool, std::size_t max_categories, bool again) {
  if (text.empty()) return;
  if (again) {
    if (!c.relabel) return;
  } else {
    if (c.numbers && !is_number && c.any) c.relabel = true;
    c.any = true;
    c.numbers = c.numbers && is_number;
    c.booleans = c.booleans && is_bool;
    if (c.numbers) return;  // labels of number columns are never needed
  }
  if (!c.too_many) {
    c.labels.emplace(text);
    if (c.labels.size() > max_categories) {
      c.too_many = true;
      c.labels.clear();
    }
  }
}

}  // namespace

Result<Schema> infer_schema(std::span<const std::filesystem::path> paths, const TableLimits& limits,
                            std::size_t max_categories) {
  std::vector<Seen> cols;
  std::map<std::string, std::size_t, std::less<>> index;
  const auto column = [&](const std::string& name) -> Seen& {
    auto [it, fresh] = index.emplace(name, cols.size());
    if (fresh) {
      cols.emplace_back();
      cols.back().name = name;
    }
    return cols[it->second];
  };
  for (int pass = 0; pass < 2; ++pass) {
    const bool again = pass == 1;
    if (again && std::none_of(cols.begin(), cols.end(), [](const Seen& c) { return c.relabel && !c.numbers; })) break;
    for (const auto& path : paths) {
      std::vector<std::string> header;
      const auto on_header = [&](const std::vector<std::string>& fields) -> Status {
        header = fields;
        for (const auto& h : header) column(h);
        return {};
      };
      const auto on_row = [&](const std::vector<std::string>& fields) -> Status {
        for (std::size_t i = 0; i < header.size() && i < fields.size(); ++i) {
          see(column(header[i]), fields[i], !std::isnan(parse_number(fields[i])), false, max_categories, again);
        }
        return {};
      };
      const auto on_object = [&](const nlohmann::json& doc) -> Status {
        for (const auto& item : doc.items()) {
          const auto& v = item.value();
          if (v.is_null() || v.is_object() || v.is_array()) {
            if (!v.is_null()) column(item.key()).too_many = true;  // not a scalar column
            continue;
          }
          const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
          see(column(item.key()), text, v.is_number(), v.is_boolean(), max_categories, again);
        }
        return {};
      };
      if (auto st = scan_file(path, limits, on_header, on_row, on_object); !st.ok()) return st;
    }
  }
  nlohmann::ordered_json props = nlohmann::ordered_json::object();
  for (const auto& c : cols) {
    if (!c.any) continue;
    if (c.numbers && !c.booleans) {
      props[c.name] = {{"type", "number"}};
    } else if (c.booleans) {
      props[c.name] = {{"type", "boolean"}};
    } else if (!c.too_many) {
      props[c.name] = {{"type", "string"}, {"enum", c.labels}};
    }
  }
  if (props.empty()) return invalid_argument("no column with values to compare in the data");
  const nlohmann::ordered_json schema = {{"type", "object"}, {"properties", props}};
  return Schema::compile(schema.dump());
}

}  // namespace ember
