// Compiles a JSON Schema document (draft 2020-12 subset) into Nodes, and finds the
// features and the plan that writes them into a row.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <set>
#include <unordered_set>

#include "schema_internal.hpp"

namespace ember::detail {

using Json = nlohmann::ordered_json;

void append_canonical_number(std::string& out, double value) {
  char buf[40];
  if (std::isfinite(value) && value == std::floor(value) && std::abs(value) < 1e18) {
    out += std::to_string(static_cast<long long>(value));
    return;
  }
  const auto res = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, res.ptr);
}

namespace {

void canonical_into(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::value_t::object: {
      std::vector<std::string> keys;
      for (const auto& item : v.items()) keys.push_back(item.key());
      std::sort(keys.begin(), keys.end());
      out += '{';
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (i) out += ',';
        out += Json(keys[i]).dump();
        out += ':';
        canonical_into(v.at(keys[i]), out);
      }
      out += '}';
      return;
    }
    case Json::value_t::array:
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        canonical_into(v[i], out);
      }
      out += ']';
      return;
    case Json::value_t::number_integer: out += std::to_string(v.get<std::int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(v.get<std::uint64_t>()); return;
    case Json::value_t::number_float: append_canonical_number(out, v.get<double>()); return;
    default: out += v.dump(); return;
  }
}

std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

class Compiler {
 public:
  Compiler(const Json& root, SchemaImpl& impl) : root_(root), impl_(impl) {}

  // How deep compile() may recurse: document nesting plus $refs followed into schemas
  // not yet compiled. Deeper is refused instead of exhausting the stack.
  static constexpr int kMaxCompileDepth = 256;

  Result<const Node*> compile(const Json& j, const std::string& path) {
    if (auto it = memo_.find(path); it != memo_.end()) return it->second;
    if (depth_ >= kMaxCompileDepth) {
      return bad(path, "schemas nest (through $ref) more than " + std::to_string(kMaxCompileDepth) + " levels deep");
    }
    ++depth_;
    auto node = compile_new(j, path);
    --depth_;
    return node;
  }

 private:
  Result<const Node*> compile_new(const Json& j, const std::string& path) {
    Node& node = impl_.nodes.emplace_back();
    node.path = path;
    memo_[path] = &node;
    if (j.is_boolean()) {
      node.is_false = !j.get<bool>();
      return &node;
    }
    if (!j.is_object()) return bad(path, "a schema must be an object or a boolean");
    for (const auto& item : j.items()) {
      EMBER_RETURN_IF_ERROR(keyword(node, item.key(), item.value(), path));
    }
    node.required_all_known = true;
    for (const std::string& name : node.required) {
      auto it = node.property_index.find(name);
      node.required_index.push_back(it == node.property_index.end() ? std::string::npos : it->second);
      if (it == node.property_index.end() || it->second >= 64) node.required_all_known = false;
      else node.required_mask |= std::uint64_t{1} << it->second;
    }
    if (node.min_length && node.max_length && *node.min_length > *node.max_length) {
      return bad(path, "minLength is greater than maxLength");
    }
    return &node;
  }


 public:
  // Same-instance edges ($ref, allOf, anyOf, oneOf, not) must not form a cycle: such a
  // cycle would validate forever without reaching the record's content. Their chains
  // must also be short, since validation follows them one call deeper each: measured
  // without recursion (a depth-first walk on an explicit stack).
  static constexpr std::size_t kMaxChain = 32;
  Status check_cycles() {
    std::unordered_map<const Node*, std::pair<int, std::size_t>> state;  // 1 visiting, 2 done; chain length
    const auto next_of = [](const Node* n) {
      std::vector<const Node*> next(n->all_of);
      next.insert(next.end(), n->any_of.begin(), n->any_of.end());
      next.insert(next.end(), n->one_of.begin(), n->one_of.end());
      if (n->ref) next.push_back(n->ref);
      if (n->not_node) next.push_back(n->not_node);
      return next;
    };
    struct Frame {
      const Node* node;
      std::vector<const Node*> next;
      std::size_t i = 0;
    };
    for (const Node& start : impl_.nodes) {
      if (state[&start].first == 2) continue;
      std::vector<Frame> stack;
      state[&start].first = 1;
      stack.push_back({&start, next_of(&start)});
      while (!stack.empty()) {
        Frame& f = stack.back();
        if (f.i < f.next.size()) {
          const Node* m = f.next[f.i++];
          auto& s = state[m];
          if (s.first == 1) {
            return invalid_argument("schema: circular $ref at " + pretty(m->path) + " never reaches the record");
          }
          if (s.first == 0) {
            s.first = 1;
            stack.push_back({m, next_of(m)});
          }
          continue;
        }
        std::size_t longest = 0;
        for (const Node* m : f.next) longest = std::max(longest, state[m].second);
        auto& s = state[f.node];
        s = {2, longest + 1};
        if (s.second > kMaxChain) {
          return invalid_argument("schema: " + pretty(f.node->path) + " starts a chain of more than " +
                                  std::to_string(kMaxChain) + " $ref/allOf/anyOf/oneOf/not links");
        }
        stack.pop_back();
      }
    }
    return {};
  }

 private:
  int depth_ = 0;
  static std::string pretty(const std::string& path) { return path.empty() ? "/" : path; }
  static Status bad(const std::string& path, const std::string& what) {
    return invalid_argument("schema: " + pretty(path) + ": " + what);
  }

  Result<std::optional<double>> number_of(const Json& v, const std::string& path, const std::string& key) {
    if (!v.is_number()) return bad(path, key + " must be a number");
    return std::optional<double>(v.get<double>());
  }
  Result<std::optional<std::uint64_t>> count_of(const Json& v, const std::string& path, const std::string& key) {
    if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      return std::optional<std::uint64_t>(v.get<std::uint64_t>());
    }
    if (v.is_number_float() && v.get<double>() >= 0 && v.get<double>() == std::floor(v.get<double>()) &&
        v.get<double>() < 9e18) {
      return std::optional<std::uint64_t>(static_cast<std::uint64_t>(v.get<double>()));
    }
    return bad(path, key + " must be a non-negative integer");
  }
  Result<std::vector<const Node*>> schema_list(const Json& v, const std::string& path, const std::string& key) {
    if (!v.is_array() || v.empty()) return bad(path, key + " must be a non-empty array of schemas");
    std::vector<const Node*> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      auto n = compile(v[i], path + "/" + key + "/" + std::to_string(i));
      if (!n.ok()) return n.status();
      out.push_back(*n);
    }
    return out;
  }

  Status keyword(Node& node, const std::string& key, const Json& v, const std::string& path) {
    const std::string here = path + "/" + escape_pointer_token(key);
    if (key == "type") {
      node.has_type = true;
      node.types = 0;
      std::vector<Json> names = v.is_array() ? std::vector<Json>(v.begin(), v.end()) : std::vector<Json>{v};
      if (names.empty()) return bad(path, "type must not be an empty list");
      for (const auto& t : names) {
        if (!t.is_string()) return bad(path, "type must be a string or a list of strings");
        const auto& s = t.get_ref<const std::string&>();
        if (s == "null") node.types |= kNullBit;
        else if (s == "boolean") node.types |= kBoolBit;
        else if (s == "integer") node.types |= kIntegerBit;
        else if (s == "number") node.types |= kNumberBit | kIntegerBit;
        else if (s == "string") node.types |= kStringBit;
        else if (s == "array") node.types |= kArrayBit;
        else if (s == "object") node.types |= kObjectBit;
        else return bad(path, "unknown type '" + s + "'");
      }
      return {};
    }
    if (key == "properties") {
      if (!v.is_object()) return bad(path, "properties must be an object");
      for (const auto& item : v.items()) {
        auto n = compile(item.value(), here + "/" + escape_pointer_token(item.key()));
        if (!n.ok()) return n.status();
        node.property_index[item.key()] = node.properties.size();
        node.properties.push_back({item.key(), *n});
      }
      return {};
    }
    if (key == "required") {
      if (!v.is_array()) return bad(path, "required must be an array of strings");
      std::set<std::string> seen;
      for (const auto& r : v) {
        if (!r.is_string()) return bad(path, "required must be an array of strings");
        if (!seen.insert(r.get<std::string>()).second) return bad(path, "required lists '" + r.get<std::string>() + "' twice");
        node.required.push_back(r.get<std::string>());
      }
      return {};
    }
    if (key == "additionalProperties") {
      if (v.is_boolean()) {
        node.additional = v.get<bool>() ? Additional::kAllow : Additional::kDeny;
        return {};
      }
      auto n = compile(v, here);
      if (!n.ok()) return n.status();
      node.additional = Additional::kSchema;
      node.additional_node = *n;
      return {};
    }
    if (key == "enum") {
      if (!v.is_array() || v.empty()) return bad(path, "enum must be a non-empty array");
      node.has_enum = true;
      for (const auto& e : v) node.enum_values.push_back({e, canonical_json(e)});
      return {};
    }
    if (key == "const") {
      node.const_value = Constant{v, canonical_json(v)};
      return {};
    }
    if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" || key == "exclusiveMaximum" ||
        key == "multipleOf") {
      auto n = number_of(v, path, key);
      if (!n.ok()) return n.status();
      if (key == "minimum") node.minimum = *n;
      else if (key == "maximum") node.maximum = *n;
      else if (key == "exclusiveMinimum") node.exclusive_minimum = *n;
      else if (key == "exclusiveMaximum") node.exclusive_maximum = *n;
      else {
        if (!(**n > 0)) return bad(path, "multipleOf must be greater than 0");
        node.multiple_of = *n;
      }
      return {};
    }
    if (key == "minLength" || key == "maxLength" || key == "minItems" || key == "maxItems") {
      auto n = count_of(v, path, key);
      if (!n.ok()) return n.status();
      (key == "minLength" ? node.min_length : key == "maxLength" ? node.max_length
                            : key == "minItems"  ? node.min_items
                                                 : node.max_items) = *n;
      return {};
    }
    if (key == "pattern") {
      if (!v.is_string()) return bad(path, "pattern must be a string");
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      opts.set_never_capture(true);
      auto re = std::make_unique<re2::RE2>(v.get<std::string>(), opts);
      if (!re->ok()) return bad(path, "pattern '" + v.get<std::string>() + "' is not supported: " + re->error());
      node.pattern = std::move(re);
      return {};
    }
    if (key == "items") {
      auto n = compile(v, here);
      if (!n.ok()) return n.status();
      node.items = *n;
      return {};
    }
    if (key == "prefixItems") {
      auto list = schema_list(v, path, key);
      if (!list.ok()) return list.status();
      node.prefix_items = *list;
      return {};
    }
    if (key == "uniqueItems") {
      if (!v.is_boolean()) return bad(path, "uniqueItems must be a boolean");
      node.unique_items = v.get<bool>();
      return {};
    }
    if (key == "allOf" || key == "anyOf" || key == "oneOf") {
      auto list = schema_list(v, path, key);
      if (!list.ok()) return list.status();
      (key == "allOf" ? node.all_of : key == "anyOf" ? node.any_of : node.one_of) = *list;
      return {};
    }
    if (key == "not") {
      auto n = compile(v, here);
      if (!n.ok()) return n.status();
      node.not_node = *n;
      return {};
    }
    if (key == "$ref") {
      if (!v.is_string()) return bad(path, "$ref must be a string");
      const auto& ref = v.get_ref<const std::string&>();
      if (ref.rfind("#/", 0) != 0 && ref != "#") {
        return bad(path, "$ref '" + ref + "' is not supported (only references inside this document, '#/...')");
      }
      const std::string pointer = ref.substr(1);
      const Json* target = nullptr;
      try {
        target = &root_.at(Json::json_pointer(pointer));
      } catch (const std::exception&) {
        return bad(path, "$ref '" + ref + "' does not resolve");
      }
      auto n = compile(*target, pointer);
      if (!n.ok()) return n.status();
      node.ref = *n;
      return {};
    }
    if (key == "$defs" || key == "definitions") {
      if (!v.is_object()) return bad(path, key + " must be an object");
      for (const auto& item : v.items()) {
        auto n = compile(item.value(), here + "/" + escape_pointer_token(item.key()));
        if (!n.ok()) return n.status();
      }
      return {};
    }
    if (key == "$schema") {
      if (!path.empty()) return bad(path, "$schema is only allowed at the top level");
      if (!v.is_string() || (v.get<std::string>() != "https://json-schema.org/draft/2020-12/schema" &&
                             v.get<std::string>() != "https://json-schema.org/draft/2020-12/schema#")) {
        return bad(path, "$schema must be https://json-schema.org/draft/2020-12/schema");
      }
      return {};
    }
    if (key == "x-ember-training-range") {
      if (!v.is_object()) return bad(path, "x-ember-training-range must be {\"min\": number, \"max\": number}");
      for (const auto& item : v.items()) {
        if ((item.key() != "min" && item.key() != "max") || !item.value().is_number()) {
          return bad(path, "x-ember-training-range must be {\"min\": number, \"max\": number}");
        }
        (item.key() == "min" ? node.train_min : node.train_max) = item.value().get<double>();
      }
      if (node.train_min && node.train_max && *node.train_min > *node.train_max) {
        return bad(path, "x-ember-training-range has min greater than max");
      }
      return {};
    }
    if (key == "x-ember-personal") {
      if (!v.is_boolean()) return bad(path, "x-ember-personal must be true or false");
      node.personal = v.get<bool>();
      return {};
    }
    // Annotations: kept in the document, not validated.
    if (key == "title" || key == "description" || key == "default" || key == "examples" || key == "$comment") {
      return {};
    }
    return invalid_argument("schema: " + pretty(path) + ": unsupported keyword '" + key + "'");
  }

  std::unordered_map<std::string, const Node*> memo_;
  const Json& root_;
  SchemaImpl& impl_;
};

// The schema a property's value is really described by: through $ref, a single allOf,
// and an anyOf of one schema plus null (how pydantic writes Optional[T]).
const Node* effective(const Node* n, bool& nullable) {
  for (int guard = 0; guard < 64 && n != nullptr; ++guard) {
    if (n->ref && n->properties.empty() && !n->has_type && !n->has_enum && !n->const_value) {
      n = n->ref;
    } else if (n->all_of.size() == 1 && n->properties.empty() && !n->has_type) {
      n = n->all_of[0];
    } else if (!n->any_of.empty() && n->properties.empty() && !n->has_type) {
      const Node* other = nullptr;
      int others = 0;
      for (const Node* b : n->any_of) {
        if (b->has_type && b->types == kNullBit) {
          nullable = true;
        } else {
          other = b;
          ++others;
        }
      }
      if (others != 1) return n;
      n = other;
    } else {
      break;
    }
  }
  if (n && n->has_type && (n->types & kNullBit)) nullable = true;
  return n;
}

std::optional<std::vector<std::string>> string_choices(const Node* n) {
  std::vector<std::string> out;
  if (n->const_value) {
    if (!n->const_value->value.is_string()) return std::nullopt;
    out.push_back(n->const_value->value.get<std::string>());
    return out;
  }
  if (!n->has_enum) return std::nullopt;
  for (const auto& e : n->enum_values) {
    if (e.value.is_null()) continue;  // Optional[Enum] may list null
    if (!e.value.is_string()) return std::nullopt;
    out.push_back(e.value.get<std::string>());
  }
  return out;
}

Status discover(SchemaImpl& impl, const Node* object, const std::string& name_prefix, const std::string& ptr_prefix,
                bool parent_required, Plan& plan, std::vector<const Node*>& ancestors) {
  plan.object_node = object;
  ancestors.push_back(object);
  plan.fields.resize(object->properties.size());
  for (std::size_t i = 0; i < object->properties.size(); ++i) {
    const Property& prop = object->properties[i];
    bool nullable = false;
    const Node* eff = effective(prop.node, nullable);
    const bool listed = std::find(object->required.begin(), object->required.end(), prop.name) != object->required.end();
    const std::string name = name_prefix + prop.name;
    const std::string ptr = ptr_prefix + "/" + escape_pointer_token(prop.name);
    if (!eff->properties.empty()) {
      // A recursive model (a node that contains itself) is validated, not flattened.
      if (std::find(ancestors.begin(), ancestors.end(), eff) != ancestors.end()) continue;
      Plan& nested = impl.plans.emplace_back();
      EMBER_RETURN_IF_ERROR(discover(impl, eff, name + ".", ptr, parent_required && listed, nested, ancestors));
      plan.fields[i].nested = &nested;
      continue;
    }
    FeatureSpec spec;
    spec.name = name;
    spec.pointer = ptr;
    spec.required = parent_required && listed;
    const std::uint8_t t = eff->has_type ? static_cast<std::uint8_t>(eff->types & ~kNullBit) : 0;
    if (auto choices = string_choices(eff); choices && !choices->empty() && (t == 0 || t == kStringBit)) {
      spec.kind = FeatureKind::kCategory;
      spec.categories = std::move(*choices);
    } else if (t == kIntegerBit) {
      spec.kind = FeatureKind::kInteger;
    } else if (t == (kIntegerBit | kNumberBit)) {
      spec.kind = FeatureKind::kNumber;
    } else if (t == kBoolBit) {
      spec.kind = FeatureKind::kBoolean;
    } else if (t == kStringBit) {
      spec.kind = FeatureKind::kText;
    } else {
      continue;  // arrays, objects without properties, mixed types: validated only
    }
    spec.training_min = prop.node->train_min ? prop.node->train_min : eff->train_min;
    spec.training_max = prop.node->train_max ? prop.node->train_max : eff->train_max;
    spec.personal = prop.node->personal || eff->personal;
    plan.fields[i].feature = static_cast<std::int64_t>(impl.features.size());
    impl.features.push_back(std::move(spec));
    impl.feature_nodes.push_back(prop.node);
  }
  ancestors.pop_back();
  return {};
}

bool annotations_only_besides(const Node& n) {
  return !n.is_false && !n.has_type && n.properties.empty() && n.required.empty() &&
         n.additional == Additional::kAllow && !n.const_value && !n.has_enum && !n.minimum && !n.maximum &&
         !n.exclusive_minimum && !n.exclusive_maximum && !n.multiple_of && !n.min_length && !n.max_length &&
         !n.pattern && !n.items && n.prefix_items.empty() && !n.min_items && !n.max_items && !n.unique_items &&
         n.all_of.empty() && n.one_of.empty() && !n.not_node;
}

// Precomputes the shortcuts the validator takes for the common shapes of schemas.
void finish_nodes(SchemaImpl& impl) {
  for (Node& n : impl.nodes) {
    n.numeric_checks = n.minimum || n.maximum || n.exclusive_minimum || n.exclusive_maximum || n.multiple_of;
    n.string_checks = n.min_length || n.max_length || n.pattern;
    n.leaf = !n.is_false && n.has_type && !(n.types & (kArrayBit | kObjectBit)) && !n.ref && n.all_of.empty() &&
             n.any_of.empty() && n.one_of.empty() && !n.not_node && !n.const_value && n.properties.empty() &&
             n.required.empty() && n.additional == Additional::kAllow && !n.items && n.prefix_items.empty() &&
             !n.min_items && !n.max_items && !n.unique_items;
    if (n.has_enum && std::all_of(n.enum_values.begin(), n.enum_values.end(),
                                  [](const Constant& c) { return c.value.is_string(); })) {
      for (const auto& c : n.enum_values) n.string_enum.push_back(c.value.get<std::string>());
    }
  }
  // Second pass: these read the first pass's flags of other nodes.
  const auto ref_only = [](const Node& x) { return x.ref && x.any_of.empty() && annotations_only_besides(x); };
  for (Node& n : impl.nodes) {
    if (ref_only(n)) {
      const Node* target = n.ref;
      for (int guard = 0; guard < 64 && ref_only(*target); ++guard) target = target->ref;
      n.alias = target;
    }
    if (n.any_of.size() == 2 && !n.ref && annotations_only_besides(n)) {
      const Node* a = n.any_of[0];
      const Node* b = n.any_of[1];
      const auto is_null = [](const Node* x) { return x->leaf && x->types == kNullBit && !x->has_enum; };
      if (is_null(b)) n.nullable_of = a;
      else if (is_null(a)) n.nullable_of = b;
    }
  }
}

// Decides whether a plan can take the validator's fast path (see Plan::fast).
void prepare_fast(Plan& plan) {
  const Node& n = *plan.object_node;
  bool fast = !n.ref && n.all_of.empty() && n.any_of.empty() && n.one_of.empty() && !n.not_node &&
              !n.const_value && !n.has_enum && n.additional != Additional::kSchema &&
              n.properties.size() <= 64 && n.required_all_known && (!n.has_type || n.types == kObjectBit);
  for (std::size_t i = 0; i < n.properties.size(); ++i) {
    Plan::Field& f = plan.fields[i];
    if (f.nested != nullptr) {
      prepare_fast(const_cast<Plan&>(*f.nested));
      const Node* target = n.properties[i].node->alias ? n.properties[i].node->alias : n.properties[i].node;
      fast = fast && f.nested->fast && target == f.nested->object_node;
      continue;
    }
    const Node* node = n.properties[i].node;
    if (node->alias) node = node->alias;
    if (node->nullable_of) {
      f.nullable = true;
      node = node->nullable_of->alias ? node->nullable_of->alias : node->nullable_of;
    }
    if (node->leaf) f.leaf = node;
    else fast = false;
  }
  plan.fast = fast;
}

}  // namespace

std::string canonical_json(const Json& value) {
  std::string out;
  canonical_into(value, out);
  return out;
}

Result<std::shared_ptr<SchemaImpl>> compile_schema(std::string_view text, const SchemaOptions& options) {
  if (options.max_errors == 0) return invalid_argument("SchemaOptions::max_errors must be at least 1");
  if (text.size() > (std::size_t{64} << 20)) return invalid_argument("schema document is over 64 MiB");
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    return invalid_argument("schema is not valid JSON (byte " + std::to_string(e.byte) + ")");
  } catch (const std::exception& e) {
    return invalid_argument(std::string("schema is not valid JSON: ") + e.what());
  }
  // The compiler recurses along the document: bound its depth first, without recursion.
  constexpr std::size_t kMaxSchemaDepth = 128;
  std::vector<std::pair<const Json*, std::size_t>> stack{{&doc, 1}};
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxSchemaDepth) {
      return invalid_argument("schema is nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    }
    if (node->is_structured()) {
      for (const auto& child : *node) stack.emplace_back(&child, depth + 1);
    }
  }
  auto impl = std::make_shared<SchemaImpl>();
  impl->options = options;
  Compiler compiler(doc, *impl);
  auto root = compiler.compile(doc, "");
  if (!root.ok()) return root.status();
  EMBER_RETURN_IF_ERROR(compiler.check_cycles());
  finish_nodes(*impl);
  impl->root = *root;

  const Node* object = impl->root;
  while (object->ref && object->properties.empty()) object = object->ref;
  if (object->properties.empty()) {
    return invalid_argument("schema: the top level must be an object schema with properties (they are the features)");
  }
  if (object->has_type && object->types != kObjectBit) {
    return invalid_argument("schema: the top level must have type object");
  }
  impl->root_additional = object->additional;
  Plan& plan = impl->plans.emplace_back();
  std::vector<const Node*> ancestors;
  EMBER_RETURN_IF_ERROR(discover(*impl, object, "", "", true, plan, ancestors));
  impl->root_plan = &plan;
  prepare_fast(plan);
  if (impl->features.empty()) return invalid_argument("schema: no property is a scalar feature");

  for (auto& f : impl->features) f.policy = options.default_policy;
  for (const auto& entry : options.field_policies) {
    const std::string& name = entry.first;
    auto it = std::find_if(impl->features.begin(), impl->features.end(), [&](const auto& f) { return f.name == name; });
    if (it == impl->features.end()) return invalid_argument("field policy for unknown feature '" + name + "'");
    it->policy = entry.second;
  }
  for (std::size_t i = 0; i < impl->features.size(); ++i) impl->feature_by_name[impl->features[i].name] = i;
  impl->flag_counts = std::make_unique<std::atomic<std::uint64_t>[]>(impl->features.size());
  return impl;
}

}  // namespace ember::detail
