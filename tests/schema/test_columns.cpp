// Records given column by column (a frame's columns, read in place) against the same
// records as JSON text: the same rows, values, flags and errors, on one thread or
// several; schemas that need JSON are refused, malformed columns are errors.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ember/threads.hpp"
#include "helpers.hpp"

using ember::Cell;
using ember::ColumnView;
using ember::StatusCode;
using schema_test::compile_ok;

namespace {

const char* kSchema = R"({"type": "object", "properties": {
    "a": {"type": "number", "minimum": -100, "x-ember-training-range": {"min": -50, "max": 50}},
    "n": {"type": "integer", "maximum": 1000},
    "o": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    "b": {"type": "boolean"},
    "c": {"enum": ["red", "green", "blue"]},
    "t": {"type": "string", "maxLength": 6},
    "k": {"type": "number"},
    "f": {"type": "integer"}},
  "required": ["a", "n", "c"]%s})";

std::string with_additional(bool deny) {
  std::string text = kSchema;
  const auto at = text.find("%s");
  text.replace(at, 2, deny ? R"(, "additionalProperties": false)" : "");
  return text;
}

void append_json(std::string& out, const Cell& c) {
  char buf[32];
  switch (c.type) {
    case Cell::Type::kNull: out += "null"; return;
    case Cell::Type::kBool: out += c.integer != 0 ? "true" : "false"; return;
    case Cell::Type::kInteger: out += std::to_string(c.integer); return;
    case Cell::Type::kUnsigned: out += std::to_string(c.unsigned_integer); return;
    case Cell::Type::kNumber: {
      if (std::isnan(c.number)) {
        out += "null";
        return;
      }
      const auto r = std::to_chars(buf, buf + sizeof buf, c.number);
      out.append(buf, r.ptr);
      return;
    }
    case Cell::Type::kString: out += '"' + std::string(c.text) + '"'; return;
    case Cell::Type::kAbsent: return;
  }
}

// Random records, with every kind of wrong value, as cells and as JSON texts.
struct Records {
  std::vector<std::string> names{"a", "n", "o", "b", "c", "t", "k", "f", "extra"};
  std::vector<std::vector<Cell>> cells;  // by column
  std::vector<double> a;                 // column "a" also as a packed float64 column
  std::vector<std::string> json;
  std::vector<std::string> strings{"red", "green", "blue", "purple", "", "toolongtext", "3.5"};
};

Records make_records(std::size_t n, std::uint32_t seed) {
  Records r;
  r.cells.assign(r.names.size(), std::vector<Cell>(n));
  std::mt19937 rng(seed);
  const auto pick = [&](int k) { return static_cast<int>(rng() % static_cast<unsigned>(k)); };
  const auto number = [&] {
    Cell c;
    switch (pick(12)) {
      case 0: c.type = Cell::Type::kNull; break;
      case 1: c.type = Cell::Type::kAbsent; break;
      case 2: c.type = Cell::Type::kString; c.text = r.strings[static_cast<std::size_t>(pick(7))]; break;
      case 3: c.type = Cell::Type::kBool; c.integer = pick(2); break;
      case 4: c.type = Cell::Type::kInteger; c.integer = pick(3000) - 1500; break;
      case 5: c.type = Cell::Type::kNumber; c.number = std::numeric_limits<double>::quiet_NaN(); break;
      default: c.type = Cell::Type::kNumber; c.number = (pick(4000) - 2000) / 8.0; break;
    }
    return c;
  };
  // Mostly a good value of the property's type, else anything (wrong types, nulls,
  // NaN, absent, out of range, unknown categories, long strings, an unknown property).
  const auto good = [&](const std::string& name) {
    Cell c;
    if (name == "b") {
      c.type = Cell::Type::kBool;
      c.integer = pick(2);
    } else if (name == "c") {
      c.type = Cell::Type::kString;
      c.text = r.strings[static_cast<std::size_t>(pick(3))];
    } else if (name == "t") {
      c.type = Cell::Type::kString;
      c.text = r.strings[static_cast<std::size_t>(pick(5))];
    } else if (name == "n" || name == "f") {
      c.type = Cell::Type::kInteger;
      c.integer = pick(1200) - 100;
    } else if (name == "extra") {
      c.type = Cell::Type::kAbsent;
    } else {
      c.type = Cell::Type::kNumber;
      c.number = (pick(1000) - 400) / 4.0;  // some outside the training range
    }
    return c;
  };
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < r.names.size(); ++k) {
      r.cells[k][i] = pick(40) == 0 ? number() : good(r.names[k]);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::string text = "{";
    for (std::size_t k = 0; k < r.names.size(); ++k) {
      if (r.cells[k][i].type == Cell::Type::kAbsent) continue;
      if (text.size() > 1) text += ',';
      text += '"' + r.names[k] + "\":";
      append_json(text, r.cells[k][i]);
    }
    r.json.push_back(text + "}");
  }
  return r;
}

std::vector<ColumnView> views_of(const Records& r) {
  std::vector<ColumnView> views;
  for (std::size_t k = 0; k < r.names.size(); ++k) {
    views.push_back({r.names[k], ColumnView::Type::kCells, r.cells[k].data(), 0});
  }
  return views;
}

void require_same(const ember::FeatureBatch& x, const ember::BatchReport& xr, const ember::FeatureBatch& y,
                  const ember::BatchReport& yr) {
  REQUIRE(x.rows == y.rows);
  CHECK(x.source_index == y.source_index);
  CHECK(std::equal(x.values.begin(), x.values.end(), y.values.begin(), y.values.end(),
                   [](double p, double q) { return p == q || (std::isnan(p) && std::isnan(q)); }));
  for (std::size_t i = 0; i < x.values.size(); ++i) {
    if (!std::isnan(x.values[i])) CHECK(x.integers[i] == y.integers[i]);
  }
  CHECK(x.text == y.text);
  CHECK(xr.valid == yr.valid);
  CHECK(xr.invalid == yr.invalid);
  CHECK(xr.flagged == yr.flagged);
  REQUIRE(xr.records.size() == yr.records.size());
  for (std::size_t k = 0; k < xr.records.size(); ++k) {
    INFO("record " << xr.records[k].first);
    CHECK(xr.records[k].first == yr.records[k].first);
    std::vector<std::string> ex, ey;
    for (const auto& e : xr.records[k].second.errors()) ex.push_back(e.to_string());
    for (const auto& e : yr.records[k].second.errors()) ey.push_back(e.to_string());
    CHECK(ex == ey);
    CHECK(xr.records[k].second.flagged() == yr.records[k].second.flagged());
  }
}

}  // namespace

TEST_CASE("columns give what the same records' JSON texts give", "[schema][columns]") {
  for (const bool deny : {false, true}) {
    for (const auto policy : {ember::FieldPolicy::kReject, ember::FieldPolicy::kCoerce, ember::FieldPolicy::kFlag}) {
      INFO("additionalProperties false: " << deny << ", policy " << static_cast<int>(policy));
      ember::SchemaOptions options;
      options.default_policy = policy;
      auto schema = compile_ok(with_additional(deny), options);
      REQUIRE(schema.accepts_columns());
      const Records r = make_records(600, 7 + static_cast<std::uint32_t>(policy));
      std::vector<std::string_view> texts(r.json.begin(), r.json.end());
      ember::JsonParser parser;
      ember::FeatureBatch from_json, from_columns;
      ember::BatchReport json_report, columns_report;
      REQUIRE(schema.validate_batch(texts, parser, from_json, json_report).ok());
      CHECK(json_report.valid > 50);  // and some of each kind of outcome
      CHECK(json_report.invalid > 0);
      CHECK(json_report.flagged > 0);
      const auto views = views_of(r);
      REQUIRE(schema.validate_batch(ember::Columns{views, 600}, from_columns, columns_report).ok());
      require_same(from_json, json_report, from_columns, columns_report);
    }
  }
}

TEST_CASE("typed columns are read in place, strided, and split over threads", "[schema][columns]") {
  auto schema = compile_ok(R"({"type": "object", "properties": {
      "x": {"type": "number", "x-ember-training-range": {"min": 0, "max": 900}},
      "i": {"type": "integer", "minimum": 0}, "u": {"type": "integer"}, "b": {"type": "boolean"},
      "s": {"type": "integer"}, "g": {"type": "number"}}, "required": ["x", "b"]})");
  const std::size_t n = 1000;
  // Row-major pairs: "x" reads every other double (a strided view of a 2-D array).
  std::vector<double> pairs(2 * n);
  std::vector<std::int64_t> i64(n);
  std::vector<std::uint64_t> u64(n);
  std::vector<std::uint8_t> flags(n);
  std::vector<std::int16_t> small(n);
  std::vector<float> f32(n);
  std::vector<std::string> json;
  for (std::size_t k = 0; k < n; ++k) {
    pairs[2 * k] = k % 97 == 0 ? std::numeric_limits<double>::quiet_NaN() : static_cast<double>(k) - 0.5;
    pairs[2 * k + 1] = -1;
    i64[k] = k % 89 == 0 ? -1 : static_cast<std::int64_t>(k) * 3;
    u64[k] = k % 251 == 0 ? std::numeric_limits<std::uint64_t>::max() : k;
    flags[k] = static_cast<std::uint8_t>(k % 3);  // any non-zero byte is true
    small[k] = static_cast<std::int16_t>(-static_cast<int>(k));
    f32[k] = k % 101 == 0 ? std::numeric_limits<float>::infinity() : static_cast<float>(k) / 4;
    char g[32];
    const auto end = std::to_chars(g, g + sizeof g, static_cast<double>(f32[k])).ptr;
    json.push_back("{\"x\":" + (std::isnan(pairs[2 * k]) ? std::string("null") : std::to_string(pairs[2 * k])) +
                   ",\"i\":" + std::to_string(i64[k]) + ",\"u\":" + std::to_string(u64[k]) +
                   ",\"b\":" + (flags[k] != 0 ? "true" : "false") + ",\"s\":" + std::to_string(small[k]) +
                   ",\"g\":" + (std::isinf(f32[k]) ? std::string("1e999") : std::string(g, end)) + "}");
  }
  const std::vector<ColumnView> views{
      {"x", ColumnView::Type::kFloat64, pairs.data(), 2 * sizeof(double)},
      {"i", ColumnView::Type::kInt64, i64.data(), 0},
      {"u", ColumnView::Type::kUInt64, u64.data(), 0},
      {"b", ColumnView::Type::kBool, flags.data(), 0},
      {"s", ColumnView::Type::kInt16, small.data(), 0},
      {"g", ColumnView::Type::kFloat32, f32.data(), 0},
  };
  ember::FeatureBatch one, many;
  ember::BatchReport one_report, many_report;
  REQUIRE(schema.validate_batch(ember::Columns{views, n}, one, one_report).ok());
  // Nulls in the required "x", negative "i", infinities in "g" (JSON cannot say them).
  CHECK(one_report.invalid == 11 + 12 + 10 - 2);  // k = 0 is in all three
  CHECK(one_report.flagged > 0);
  const auto g_error = std::find_if(one_report.records.begin(), one_report.records.end(),
                                    [](const auto& r) { return r.first == 101; });
  REQUIRE(g_error != one_report.records.end());
  CHECK(g_error->second.errors()[0].to_string() == "/g: an infinity is not a JSON number");
  // The same as JSON text, except the infinities, which no JSON text holds.
  std::vector<std::string_view> texts(json.begin(), json.end());
  ember::JsonParser parser;
  ember::FeatureBatch from_json;
  ember::BatchReport json_report;
  REQUIRE(schema.validate_batch(texts, parser, from_json, json_report).ok());
  CHECK(from_json.rows == one.rows);
  CHECK(from_json.source_index == one.source_index);
  CHECK(std::equal(from_json.values.begin(), from_json.values.end(), one.values.begin(), one.values.end(),
                   [](double p, double q) { return p == q || (std::isnan(p) && std::isnan(q)); }));
  // A uint64 above INT64_MAX is an integer, not an exact int64.
  const auto u_col = static_cast<std::size_t>(schema.feature_index("u"));
  const auto row_of_251 = std::find(one.source_index.begin(), one.source_index.end(), 251U);
  REQUIRE(row_of_251 != one.source_index.end());
  const auto row = static_cast<std::size_t>(row_of_251 - one.source_index.begin());
  CHECK(one.values[row * one.cols + u_col] == 18446744073709551615.0);
  CHECK(one.integers[row * one.cols + u_col] == ember::kNotInteger);

  ember::ThreadPoolOptions pool_options;
  pool_options.threads = 3;
  pool_options.max_threads = 3;
  auto pool = ember::ThreadPool::create(pool_options);
  REQUIRE(pool.ok());
  for (unsigned threads : {2U, 4U, 0U}) {
    INFO("threads " << threads);
    ember::BatchOptions options;
    options.threads = threads;
    options.executor = pool->get();
    REQUIRE(schema.validate_batch(ember::Columns{views, n}, many, many_report, options).ok());
    require_same(one, one_report, many, many_report);
  }
}

TEST_CASE("columns: schemas that need JSON and malformed columns are refused", "[schema][columns]") {
  ember::FeatureBatch batch;
  ember::BatchReport report;
  std::vector<double> x{1, 2};
  const std::vector<ColumnView> views{{"x", ColumnView::Type::kFloat64, x.data(), 0}};
  for (const char* needs_json : {
           R"({"type": "object", "properties": {"x": {"type": "number"}, "a": {"type": "object", "properties": {"y": {"type": "number"}}}}})",
           R"({"type": "object", "properties": {"x": {"type": "number"}, "tags": {"type": "array"}}})",
           R"({"type": "object", "properties": {"x": {"type": "number"}}, "anyOf": [{"required": ["x"]}]})",
           R"({"type": "object", "properties": {"x": {"type": "number"}}, "required": ["y"]})",
           R"({"type": "object", "properties": {"x": {"type": "number"}}, "additionalProperties": {"type": "string"}})",
       }) {
    INFO(needs_json);
    auto schema = compile_ok(needs_json);
    CHECK_FALSE(schema.accepts_columns());
    const auto s = schema.validate_batch(ember::Columns{views, 2}, batch, report);
    CHECK(s.code() == StatusCode::kFailedPrecondition);
    CHECK_THAT(s.message(), Catch::Contains("give its records as JSON"));
  }
  auto schema = compile_ok(R"({"type": "object", "properties": {"x": {"type": "number"}}})");
  const std::vector<ColumnView> no_data{{"x", ColumnView::Type::kFloat64, nullptr, 0}};
  CHECK(schema.validate_batch(ember::Columns{no_data, 2}, batch, report).code() == StatusCode::kInvalidArgument);
  CHECK(schema.validate_batch(ember::Columns{no_data, 0}, batch, report).ok());  // no rows: nothing is read
  CHECK(batch.rows == 0);
  const std::vector<ColumnView> bad_type{{"x", static_cast<ColumnView::Type>(200), x.data(), 0}};
  const auto s = schema.validate_batch(ember::Columns{bad_type, 2}, batch, report);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("column 'x': unknown type"));
  // A column twice is refused, as JSON refuses a duplicate key.
  const std::vector<ColumnView> twice{{"x", ColumnView::Type::kFloat64, x.data(), 0},
                                      {"x", ColumnView::Type::kFloat64, x.data(), 0}};
  CHECK_THAT(schema.validate_batch(ember::Columns{twice, 2}, batch, report).message(),
             Catch::Contains("column 'x' appears twice"));
  const std::string long_name(100000, 'n');
  const std::vector<ColumnView> long_column{{long_name, ColumnView::Type::kFloat64, x.data(), 0}};
  CHECK_THAT(schema.validate_batch(ember::Columns{long_column, 2}, batch, report).message(),
             Catch::Contains("column name of 100000 bytes is over the limit"));
  // cell_at reads what validate_batch reads: packed when the stride is 0, NaN as null.
  const std::vector<double> three{4, std::nan(""), 6};
  const ColumnView packed{"x", ColumnView::Type::kFloat64, three.data(), 0};
  CHECK(ember::cell_at(packed, 2).number == 6);
  CHECK(ember::cell_at(packed, 1).type == Cell::Type::kNull);
  // Negative strides read backwards.
  const std::vector<ColumnView> backwards{{"x", ColumnView::Type::kFloat64, x.data() + 1, -8}};
  REQUIRE(schema.validate_batch(ember::Columns{backwards, 2}, batch, report).ok());
  CHECK(batch.values == std::vector<double>{2, 1});
  // Invalid UTF-8 in a cell is an error, not a crash.
  std::vector<Cell> cells(1);
  cells[0].type = Cell::Type::kString;
  cells[0].text = std::string_view("\xff\xfe", 2);
  auto text_schema = compile_ok(R"({"type": "object", "properties": {"s": {"type": "string"}}})");
  const std::vector<ColumnView> bad_text{{"s", ColumnView::Type::kCells, cells.data(), 0}};
  REQUIRE(text_schema.validate_batch(ember::Columns{bad_text, 1}, batch, report).ok());
  CHECK(report.invalid == 1);
  CHECK(report.records[0].second.errors()[0].message == "invalid UTF-8 in string");
}
