// net.json and the checks every network passes before it runs, however it was made.
#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "executor/native/net.hpp"

namespace ember::detail {

namespace {

using Json = nlohmann::json;
constexpr int kFormatVersion = 1;
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 16;
constexpr std::size_t kMaxLayers = 4096;

struct OpName {
  NetOp op;
  const char* name;
};
constexpr OpName kOps[] = {
    {NetOp::kLinear, "linear"},       {NetOp::kRelu, "relu"},       {NetOp::kLeakyRelu, "leaky_relu"},
    {NetOp::kGelu, "gelu"},           {NetOp::kGeluTanh, "gelu_tanh"}, {NetOp::kTanh, "tanh"},
    {NetOp::kSigmoid, "sigmoid"},     {NetOp::kSoftmax, "softmax"}, {NetOp::kLayerNorm, "layer_norm"},
    {NetOp::kAffine, "affine"},       {NetOp::kSave, "save"},       {NetOp::kAddSaved, "add_saved"},
};

const char* op_name(NetOp op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

Result<std::vector<float>> floats(const Json& a, const std::string& where, std::size_t expected) {
  if (!a.is_array() || a.size() != expected) {
    return invalid_argument(where + " must hold " + std::to_string(expected) + " numbers");
  }
  std::vector<float> out(expected);
  for (std::size_t i = 0; i < expected; ++i) {
    if (!a[i].is_number()) return invalid_argument(where + "[" + std::to_string(i) + "] is not a number");
    const double v = a[i].get<double>();
    if (!std::isfinite(v) || std::fabs(v) > 3.4e38) {
      return invalid_argument(where + "[" + std::to_string(i) + "] is not a finite float32");
    }
    out[i] = static_cast<float>(v);
  }
  return out;
}

Result<std::int64_t> width_of(const Json& layer, const char* key, const std::string& where) {
  if (!layer.contains(key) || !layer.at(key).is_number_integer()) {
    return invalid_argument(where + ": '" + key + "' must be an integer");
  }
  const auto v = layer.at(key).get<std::int64_t>();
  if (v < 1 || v > kMaxWidth) return invalid_argument(where + ": '" + key + "' must be 1 to " + std::to_string(kMaxWidth));
  return v;
}

Result<NetLayer> parse_layer(const Json& j, std::int64_t width, const std::string& where) {
  if (!j.is_object() || !j.contains("op") || !j.at("op").is_string()) {
    return invalid_argument(where + ": must be an object with a string 'op'");
  }
  const std::string name = j.at("op").get<std::string>();
  NetLayer l;
  bool known = false;
  for (const auto& o : kOps) {
    if (name == o.name) {
      l.op = o.op;
      known = true;
    }
  }
  if (!known) {
    std::string all;
    for (const auto& o : kOps) all += std::string(all.empty() ? "" : ", ") + o.name;
    return invalid_argument(where + ": unknown op '" + name + "' (" + all + ")");
  }
  l.in = l.out = width;
  const auto u = static_cast<std::size_t>(width);
  switch (l.op) {
    case NetOp::kLinear: {
      auto in = width_of(j, "in", where);
      if (!in.ok()) return in.status();
      auto out = width_of(j, "out", where);
      if (!out.ok()) return out.status();
      if (*in != width) {
        return invalid_argument(where + ": 'in' is " + std::to_string(*in) + " but the activation is " +
                                std::to_string(width) + " wide");
      }
      l.out = *out;
      if (!j.contains("weight") || !j.at("weight").is_array() || j.at("weight").size() != static_cast<std::size_t>(*out)) {
        return invalid_argument(where + ": 'weight' must hold 'out' rows of 'in' numbers");
      }
      // Stored as torch's Linear.weight (out x in); run as its transpose.
      l.weight.assign(static_cast<std::size_t>(*in * *out), 0.0f);
      for (std::int64_t o = 0; o < *out; ++o) {
        auto row = floats(j.at("weight")[static_cast<std::size_t>(o)], where + ": 'weight'[" + std::to_string(o) + "]",
                          static_cast<std::size_t>(*in));
        if (!row.ok()) return row.status();
        for (std::int64_t i = 0; i < *in; ++i) l.weight[static_cast<std::size_t>(i * *out + o)] = (*row)[static_cast<std::size_t>(i)];
      }
      if (j.contains("bias") && !j.at("bias").is_null()) {
        auto bias = floats(j.at("bias"), where + ": 'bias'", static_cast<std::size_t>(*out));
        if (!bias.ok()) return bias.status();
        l.bias = std::move(*bias);
      }
      break;
    }
    case NetOp::kLeakyRelu:
      if (!j.contains("alpha") || !j.at("alpha").is_number()) return invalid_argument(where + ": 'alpha' must be a number");
      l.alpha = j.at("alpha").get<float>();
      break;
    case NetOp::kLayerNorm:
    case NetOp::kAffine: {
      const bool norm = l.op == NetOp::kLayerNorm;
      for (const char* key : {"weight", "bias"}) {
        if (norm && (!j.contains(key) || j.at(key).is_null())) continue;
        auto v = floats(j.contains(key) ? j.at(key) : Json(), where + ": '" + key + "'", u);
        if (!v.ok()) return v.status();
        (std::string(key) == "weight" ? l.weight : l.bias) = std::move(*v);
      }
      if (norm) {
        if (!j.contains("eps") || !j.at("eps").is_number() || !(j.at("eps").get<double>() > 0)) {
          return invalid_argument(where + ": 'eps' must be a positive number");
        }
        l.alpha = j.at("eps").get<float>();
      }
      break;
    }
    case NetOp::kSave:
    case NetOp::kAddSaved:
      if (!j.contains("slot") || !j.at("slot").is_number_integer() || j.at("slot").get<std::int64_t>() < 0 ||
          j.at("slot").get<std::int64_t>() >= kMaxSlots) {
        return invalid_argument(where + ": 'slot' must be an integer from 0 to " + std::to_string(kMaxSlots - 1));
      }
      l.slot = j.at("slot").get<int>();
      break;
    default:
      break;
  }
  return l;
}

}  // namespace

Status NetSpec::check() const {
  if (inputs < 1 || inputs > kMaxWidth) return invalid_argument("net: 'inputs' must be 1 to " + std::to_string(kMaxWidth));
  if (layers.size() > kMaxLayers) return invalid_argument("net: at most " + std::to_string(kMaxLayers) + " layers");
  std::int64_t width = inputs;
  std::vector<std::int64_t> slot_width(kMaxSlots, 0);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const NetLayer& l = layers[i];
    const std::string where = "net layer " + std::to_string(i) + " (" + op_name(l.op) + ")";
    if (l.in != width) return invalid_argument(where + ": takes " + std::to_string(l.in) + " columns, gets " + std::to_string(width));
    const auto u = static_cast<std::size_t>(width);
    switch (l.op) {
      case NetOp::kLinear:
        if (l.out < 1 || l.out > kMaxWidth || l.weight.size() != static_cast<std::size_t>(l.in * l.out) ||
            (!l.bias.empty() && l.bias.size() != static_cast<std::size_t>(l.out))) {
          return invalid_argument(where + ": weight or bias of the wrong size");
        }
        break;
      case NetOp::kAffine:
        if (l.weight.size() != u || l.bias.size() != u) return invalid_argument(where + ": scale or shift of the wrong size");
        break;
      case NetOp::kLayerNorm:
        if ((!l.weight.empty() && l.weight.size() != u) || (!l.bias.empty() && l.bias.size() != u) || !(l.alpha > 0)) {
          return invalid_argument(where + ": weight, bias or eps wrong");
        }
        break;
      case NetOp::kSave:
        if (l.slot < 0 || l.slot >= kMaxSlots) return invalid_argument(where + ": slot out of range");
        slot_width[static_cast<std::size_t>(l.slot)] = width;
        break;
      case NetOp::kAddSaved:
        if (l.slot < 0 || l.slot >= kMaxSlots || slot_width[static_cast<std::size_t>(l.slot)] != width) {
          return invalid_argument(where + ": slot " + std::to_string(l.slot) + " holds no activation of width " +
                                  std::to_string(width));
        }
        break;
      default:
        break;
    }
    if (l.op != NetOp::kLinear && l.out != l.in) return invalid_argument(where + ": changes the width");
    if (!std::isfinite(l.alpha)) return invalid_argument(where + ": not finite");
    width = l.out;
  }
  if (squeeze && width != 1) return invalid_argument("net: 'squeeze' needs an output of width 1");
  return {};
}

std::string NetSpec::describe() const {
  std::string s;
  for (const NetLayer& l : layers) {
    if (!s.empty()) s += ", ";
    s += op_name(l.op);
    if (l.op == NetOp::kLinear) s += " " + std::to_string(l.in) + "->" + std::to_string(l.out);
  }
  if (squeeze) s += s.empty() ? "squeeze" : ", squeeze";
  return s.empty() ? "identity" : s;
}

std::int64_t NetSpec::parameters() const {
  std::int64_t n = 0;
  for (const NetLayer& l : layers) n += static_cast<std::int64_t>(l.weight.size() + l.bias.size());
  return n;
}

int NetSpec::slots() const {
  int n = 0;
  for (const NetLayer& l : layers) {
    if (l.op == NetOp::kSave || l.op == NetOp::kAddSaved) n = std::max(n, l.slot + 1);
  }
  return n;
}

std::int64_t NetSpec::widest() const {
  std::int64_t w = inputs;
  for (const NetLayer& l : layers) w = std::max(w, l.out);
  return w;
}

Result<NetSpec> parse_net(std::string_view text) try {
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const std::exception&) {
    return invalid_argument("net: not valid JSON");
  }
  if (!doc.is_object() || doc.value("format", "") != "ember-net") {
    return invalid_argument("not an ember network (\"format\" must be \"ember-net\")");
  }
  if (!doc.contains("version") || !doc.at("version").is_number_integer() || doc.at("version").get<int>() != kFormatVersion) {
    return invalid_argument("net: unsupported format version (this ember reads version " + std::to_string(kFormatVersion) + ")");
  }
  NetSpec spec;
  auto inputs = width_of(doc, "inputs", "net");
  if (!inputs.ok()) return inputs.status();
  spec.inputs = *inputs;
  if (doc.contains("squeeze")) {
    if (!doc.at("squeeze").is_boolean()) return invalid_argument("net: 'squeeze' must be true or false");
    spec.squeeze = doc.at("squeeze").get<bool>();
  }
  if (!doc.contains("layers") || !doc.at("layers").is_array()) return invalid_argument("net: 'layers' must be an array");
  if (doc.at("layers").size() > kMaxLayers) return invalid_argument("net: at most " + std::to_string(kMaxLayers) + " layers");
  std::int64_t width = spec.inputs;
  for (std::size_t i = 0; i < doc.at("layers").size(); ++i) {
    auto layer = parse_layer(doc.at("layers")[i], width, "net layer " + std::to_string(i));
    if (!layer.ok()) return layer.status();
    width = layer->out;
    spec.layers.push_back(std::move(*layer));
  }
  EMBER_RETURN_IF_ERROR(spec.check());
  return spec;
} catch (const std::exception& e) {
  return invalid_argument(std::string("net: malformed: ") + e.what());
}

std::string net_to_json(const NetSpec& spec) {
  Json layers = Json::array();
  for (const NetLayer& l : spec.layers) {
    Json j = {{"op", op_name(l.op)}};
    switch (l.op) {
      case NetOp::kLinear: {
        Json weight = Json::array();
        for (std::int64_t o = 0; o < l.out; ++o) {
          Json row = Json::array();
          for (std::int64_t i = 0; i < l.in; ++i) row.push_back(l.weight[static_cast<std::size_t>(i * l.out + o)]);
          weight.push_back(std::move(row));
        }
        j["in"] = l.in;
        j["out"] = l.out;
        j["weight"] = std::move(weight);
        if (!l.bias.empty()) j["bias"] = l.bias;
        break;
      }
      case NetOp::kLeakyRelu:
        j["alpha"] = l.alpha;
        break;
      case NetOp::kLayerNorm:
        if (!l.weight.empty()) j["weight"] = l.weight;
        if (!l.bias.empty()) j["bias"] = l.bias;
        j["eps"] = l.alpha;
        break;
      case NetOp::kAffine:
        j["weight"] = l.weight;
        j["bias"] = l.bias;
        break;
      case NetOp::kSave:
      case NetOp::kAddSaved:
        j["slot"] = l.slot;
        break;
      default:
        break;
    }
    layers.push_back(std::move(j));
  }
  Json doc = {{"format", "ember-net"}, {"version", kFormatVersion}, {"inputs", spec.inputs},
              {"squeeze", spec.squeeze}, {"layers", std::move(layers)}};
  return doc.dump();
}

}  // namespace ember::detail
