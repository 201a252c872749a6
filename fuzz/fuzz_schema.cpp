// libFuzzer target for JSON parsing and schema validation (and schema compilation).
// The first byte picks what the rest of the input is: a record for one of the
// built-in schemas, a schema document to compile and exercise, or records given column
// by column, checked against the same records as JSON text.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "ember/schema.hpp"

namespace {

const char* const kSchemas[] = {
    // pydantic-shaped: enums, Optional, nested model, list, training range, pattern
    R"({"$defs": {"Plan": {"enum": ["basic", "pro"], "type": "string"},
                 "Address": {"properties": {"city": {"type": "string", "maxLength": 20},
                                            "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                             "required": ["city"], "type": "object"}},
       "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120,
                              "x-ember-training-range": {"min": 18, "max": 90}},
                      "income": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": null},
                      "plan": {"$ref": "#/$defs/Plan"}, "active": {"type": "boolean"},
                      "address": {"$ref": "#/$defs/Address"},
                      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4, "uniqueItems": true}},
       "required": ["age", "plan"], "type": "object"})",
    // combinators, recursion, tuples, additionalProperties schema
    R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "number", "multipleOf": 0.5},
                                                            "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]}}}},
       "type": "object",
       "properties": {"head": {"$ref": "#/$defs/node"}, "n": {"type": "number"},
                      "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
                      "pick": {"oneOf": [{"multipleOf": 3}, {"multipleOf": 5}]},
                      "neg": {"not": {"type": "string"}}, "c": {"const": {"k": [1, 2]}},
                      "all": {"allOf": [{"minimum": 1}, {"maximum": 9}]}},
       "additionalProperties": {"type": ["string", "number", "null"]}})",
    // forbidding extras, coercion target types
    R"({"type": "object", "additionalProperties": false,
       "properties": {"x": {"type": "number", "exclusiveMinimum": 0}, "i": {"type": "integer"},
                      "b": {"type": "boolean"}, "s": {"type": "string", "minLength": 1},
                      "e": {"enum": [1, "a", null, [1], {"k": 1}]}}})",
};

// Any broken invariant is a bug: crash so the fuzzer keeps the input.
void require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz_schema: invariant broken: %s\n", what);
    std::abort();
  }
}

void exercise(const ember::Schema& schema, std::string_view text, ember::JsonParser& parser) {
  ember::FeatureRow row;
  ember::ValidationReport report;
  const ember::Status s = schema.validate_into(text, parser, row, report);
  require(s.ok() == report.ok(), "status agrees with report");
  require(row.values.size() == schema.features().size(), "row has one slot per feature");
  require(row.text.size() == schema.features().size(), "row has one text slot per feature");
  require(report.errors().size() <= schema.options().max_errors, "error cap");
  for (const auto& e : report.errors()) require(!e.message.empty(), "every error has a message");
  for (auto f : report.flagged()) require(f < schema.features().size(), "flags name features");
  auto value = parser.parse(text);
  if (value.ok()) {
    (void)schema.validate(*value, report);
    require(report.errors().size() <= schema.options().max_errors, "error cap (any value)");
  }
}

// Records column by column from the fuzzer's bytes: per cell a type byte, then its
// value. The same records as JSON text must give the same rows and the same errors
// (except where JSON cannot say the value: an infinity, invalid UTF-8, where both must
// only refuse the record).
const char* const kFlat = R"({"type": "object", "additionalProperties": false, "properties": {
    "x": {"type": "number", "minimum": -5, "x-ember-training-range": {"min": 0, "max": 9}},
    "i": {"type": "integer", "maximum": 100}, "o": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    "b": {"type": "boolean"}, "c": {"enum": ["red", "blue"]}, "s": {"type": "string", "maxLength": 4}},
  "required": ["x", "c"]})";

class Bytes {
 public:
  Bytes(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  bool empty() const { return n_ == 0; }
  std::uint8_t byte() { return n_ == 0 ? 0 : (--n_, *p_++); }
  template <typename T>
  T value() {
    T v{};
    std::uint8_t raw[sizeof v] = {};
    for (auto& b : raw) b = byte();
    std::memcpy(&v, raw, sizeof v);
    return v;
  }
  std::string_view text(std::size_t max) {
    const std::size_t k = std::min<std::size_t>(byte() % (max + 1), n_);
    const std::string_view out(reinterpret_cast<const char*>(p_), k);
    p_ += k;
    n_ -= k;
    return out;
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

void columns_against_json(const ember::Schema& schema, Bytes in, ember::JsonParser& parser) {
  const char* names[] = {"x", "i", "o", "b", "c", "s", "zz"};
  constexpr std::size_t kCols = std::size(names);
  const std::size_t rows = 1 + in.byte() % 4;
  std::vector<std::vector<ember::Cell>> cells(kCols, std::vector<ember::Cell>(rows));
  std::vector<std::string> json(rows);
  std::vector<bool> exact(rows, true);  // JSON can say every value of the record
  const char* kinds[] = {"red", "blue", "3.5", "true", ""};
  for (std::size_t r = 0; r < rows; ++r) {
    std::string& j = json[r];
    j = "{";
    for (std::size_t k = 0; k < kCols; ++k) {
      ember::Cell& c = cells[k][r];
      switch (in.byte() % 8) {
        case 0: continue;  // absent
        case 1: c.type = ember::Cell::Type::kNull; break;
        case 2: c.type = ember::Cell::Type::kBool; c.integer = in.byte() & 1; break;
        case 3: c.type = ember::Cell::Type::kInteger; c.integer = in.value<std::int64_t>(); break;
        case 4: c.type = ember::Cell::Type::kUnsigned; c.unsigned_integer = in.value<std::uint64_t>() | (1ULL << 63); break;
        case 5: c.type = ember::Cell::Type::kNumber; c.number = in.value<double>(); break;
        case 6: c.type = ember::Cell::Type::kString; c.text = kinds[in.byte() % std::size(kinds)]; break;
        default: c.type = ember::Cell::Type::kString; c.text = in.text(8); break;
      }
      if (j.size() > 1) j += ',';
      j += '"' + std::string(names[k]) + "\":";
      char buf[32];
      switch (c.type) {
        case ember::Cell::Type::kNull: j += "null"; break;
        case ember::Cell::Type::kBool: j += c.integer != 0 ? "true" : "false"; break;
        case ember::Cell::Type::kInteger: j += std::to_string(c.integer); break;
        case ember::Cell::Type::kUnsigned: j += std::to_string(c.unsigned_integer); break;
        case ember::Cell::Type::kNumber:
          if (std::isnan(c.number)) {
            j += "null";
          } else if (std::isinf(c.number)) {
            j += "1e999";
            exact[r] = false;
          } else {
            // (all digits for a large integral value would be an integer beyond 64 bits)
            j.append(buf, std::to_chars(buf, buf + sizeof buf, c.number, std::chars_format::scientific).ptr);
          }
          break;
        default:
          j += '"';
          for (unsigned char ch : c.text) {
            if (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x80) {
              char esc[8];
              std::snprintf(esc, sizeof esc, "\\u%04x", ch);
              j += esc;
              if (ch >= 0x80) exact[r] = false;  // the code point U+00XX, where the cell has the byte
            } else {
              j += static_cast<char>(ch);
            }
          }
          j += '"';
      }
    }
    j += '}';
  }
  std::vector<ember::ColumnView> views;
  for (std::size_t k = 0; k < kCols; ++k) views.push_back({names[k], ember::ColumnView::Type::kCells, cells[k].data(), 0});
  ember::FeatureBatch by_columns, by_text;
  ember::BatchReport columns_report, text_report;
  require(schema.validate_batch(ember::Columns{views, rows}, by_columns, columns_report).ok(), "columns validate");
  std::vector<std::string_view> texts(json.begin(), json.end());
  require(schema.validate_batch(texts, parser, by_text, text_report).ok(), "texts validate");
  const auto report_of = [](const ember::BatchReport& b, std::size_t r) -> const ember::ValidationReport* {
    for (const auto& [i, rep] : b.records) {
      if (i == r) return &rep;
    }
    return nullptr;
  };
  for (std::size_t r = 0; r < rows; ++r) {
    const auto* a = report_of(columns_report, r);
    const auto* b = report_of(text_report, r);
    const bool a_ok = a == nullptr || a->ok();
    const bool b_ok = b == nullptr || b->ok();
    if (!exact[r]) {
      require(a_ok == b_ok || !a_ok, "a value JSON cannot say is no more accepted by columns");
      continue;
    }
    if (a_ok != b_ok || (a != nullptr && b != nullptr && a->errors().size() != b->errors().size())) {
      std::fprintf(stderr, "record %s\n  columns: %s\n  text:    %s\n", json[r].c_str(),
                   a != nullptr ? a->status().to_string().c_str() : "ok", b != nullptr ? b->status().to_string().c_str() : "ok");
    }
    require(a_ok == b_ok, "columns and JSON text agree on validity");
    if (a != nullptr && b != nullptr && !a_ok) {
      require(a->errors().size() == b->errors().size(), "columns and JSON text give as many errors");
      for (std::size_t e = 0; e < a->errors().size(); ++e) {
        require(a->errors()[e].to_string() == b->errors()[e].to_string(), "columns and JSON text give the same errors");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<ember::Schema> schemas = [] {
    std::vector<ember::Schema> out;
    for (const char* text : kSchemas) {
      ember::SchemaOptions options;
      options.limits.max_string_bytes = 256;
      if (out.size() == 2) options.default_policy = ember::FieldPolicy::kCoerce;
      auto s = ember::Schema::compile(text, options);
      require(s.ok(), "built-in schemas compile");
      out.push_back(*s);
    }
    return out;
  }();
  static const ember::Schema flat = [] {
    auto s = ember::Schema::compile(kFlat);
    require(s.ok() && s->accepts_columns(), "the flat schema compiles and takes columns");
    return *s;
  }();
  static ember::JsonParser parser(ember::JsonLimits{4096, 32, 256});
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t mode = data[0] % (std::size(kSchemas) + 2);
  if (mode < std::size(kSchemas)) {
    exercise(schemas[mode], text, parser);
    return 0;
  }
  if (mode == std::size(kSchemas) + 1) {
    columns_against_json(flat, Bytes(data + 1, size - 1), parser);
    return 0;
  }
  auto compiled = ember::Schema::compile(text);
  if (compiled.ok()) {
    require(!compiled->features().empty(), "a compiled schema has features");
    for (const char* doc : {"{}", "{\"a\": 1}", "[1]", "null", "{\"a\": {\"b\": [true, \"x\", null]}}"}) {
      exercise(*compiled, doc, parser);
    }
  }
  return 0;
}
