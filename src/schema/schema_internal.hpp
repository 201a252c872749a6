#pragma once

// Private: the compiled form of a schema.
#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/schema.hpp"

namespace ember::detail {

enum TypeBits : std::uint8_t {
  kNullBit = 1,
  kBoolBit = 2,
  kIntegerBit = 4,
  kNumberBit = 8,  // includes integers
  kStringBit = 16,
  kArrayBit = 32,
  kObjectBit = 64,
  kAllTypes = 127,
};

struct Node;

struct Property {
  Property(std::string n, const Node* sub) : name(std::move(n)), node(sub) {
    std::memcpy(&head, name.data(), std::min<std::size_t>(name.size(), sizeof head));
  }
  std::string name;
  const Node* node = nullptr;
  std::uint64_t head = 0;  // the name's first eight bytes (zero-filled), for a fast compare
};

enum class Additional : std::uint8_t { kAllow, kDeny, kSchema };

// An enum or const value, with fast forms for the common scalar cases.
struct Constant {
  nlohmann::ordered_json value;
  std::string canonical;  // canonical JSON text, for arrays and objects
};

struct Node {
  std::string path;  // JSON Pointer of this schema in the document
  bool is_false = false;
  std::uint8_t types = kAllTypes;
  bool has_type = false;

  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;

  std::optional<std::uint64_t> min_length, max_length;
  std::unique_ptr<re2::RE2> pattern;

  const Node* items = nullptr;
  std::vector<const Node*> prefix_items;
  std::optional<std::uint64_t> min_items, max_items;
  bool unique_items = false;

  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::vector<Property> properties;
  std::unordered_map<std::string, std::size_t, NameHash, std::equal_to<>> property_index;
  std::vector<std::string> required;
  std::vector<std::size_t> required_index;  // per required name: its property index, or npos
  std::uint64_t required_mask = 0;          // bits of required_index, when all are < 64
  bool required_all_known = false;          // every required name is a property below 64
  Additional additional = Additional::kAllow;
  const Node* additional_node = nullptr;

  std::optional<Constant> const_value;
  std::vector<Constant> enum_values;
  bool has_enum = false;

  std::vector<const Node*> all_of, any_of, one_of;
  const Node* not_node = nullptr;
  const Node* ref = nullptr;

  std::optional<double> train_min, train_max;
  bool personal = false;  // x-ember-personal: redacted from prediction logs

  // Shortcuts found after compiling (see finish_nodes): they change speed, not meaning.
  const Node* alias = nullptr;        // a node that is only a $ref: the schema it stands for
  const Node* nullable_of = nullptr;  // anyOf [X, {"type": "null"}] and nothing else: X
  bool leaf = false;                  // scalar checks only (no refs, combinators, containers)
  bool numeric_checks = false;
  bool string_checks = false;
  std::vector<std::string> string_enum;  // the enum, when every value is a string
};

// How the features sit in one object schema: for each of its properties, the feature
// it fills (or -1) and, for a nested object, the plan for that object.
struct Plan {
  const Node* object_node = nullptr;
  struct Field {
    std::int64_t feature = -1;
    const Plan* nested = nullptr;
    // The fast path (see Plan::fast): the scalar schema the value must meet, and
    // whether null is also allowed (Optional[T]).
    const Node* leaf = nullptr;
    bool nullable = false;
  };
  std::vector<Field> fields;  // by property index
  // Every property is a plain scalar (or Optional of one) or a nested object that is
  // itself fast, the object schema has nothing else to check, and every required name
  // is a property: a valid record can then be checked and written in one flat pass.
  bool fast = false;
};

struct SchemaImpl {
  SchemaOptions options;
  std::deque<Node> nodes;
  const Node* root = nullptr;
  std::deque<Plan> plans;
  const Plan* root_plan = nullptr;
  std::vector<FeatureSpec> features;
  std::vector<const Node*> feature_nodes;  // the property schema of each feature
  std::unordered_map<std::string, std::size_t, Node::NameHash, std::equal_to<>> feature_by_name;
  Additional root_additional = Additional::kAllow;
  std::unique_ptr<std::atomic<std::uint64_t>[]> flag_counts;
};

// Canonical JSON text: object keys sorted, numbers with integral values written as
// integers. Two JSON values are equal in JSON Schema's sense iff their texts are equal.
std::string canonical_json(const nlohmann::ordered_json& value);
void append_canonical_number(std::string& out, double value);

Result<std::shared_ptr<SchemaImpl>> compile_schema(std::string_view text, const SchemaOptions& options);

}  // namespace ember::detail
