// Walks the frozen graph of a module's forward(): every node must continue one chain of
// activations from the input with an operation the native path has, taking its weights
// from constants. The first node that does not is the reason the model stays on LibTorch.
#include "executor/torch/lower.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace ember::detail {

namespace {

using torch::jit::Node;
using torch::jit::Value;

Status unsupported(const std::string& why) { return failed_precondition(why); }

std::string node_text(const Node* n) {
  std::ostringstream s;
  s << *n;
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const auto hash = text.find('#');  // drop the source location comment
  if (hash != std::string::npos) text = text.substr(0, hash);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text.size() > 160 ? text.substr(0, 157) + "..." : text;
}

std::optional<c10::IValue> constant(const Value* v) { return torch::jit::toIValue(v); }

// A float32 CPU tensor constant, contiguous, as floats.
Result<std::vector<float>> tensor_constant(const Value* v, std::vector<std::int64_t>& shape, const std::string& what) {
  auto c = constant(v);
  if (!c || !c->isTensor()) return unsupported(what + " is not a constant tensor");
  at::Tensor t = c->toTensor();
  if (t.scalar_type() != at::kFloat) return unsupported(what + " is " + std::string(c10::toString(t.scalar_type())) + ", not float32");
  if (!t.device().is_cpu()) return unsupported(what + " is not on the CPU");
  t = t.contiguous();
  shape.assign(t.sizes().begin(), t.sizes().end());
  const float* p = t.data_ptr<float>();
  return std::vector<float>(p, p + t.numel());
}

bool is_none(const Value* v) {
  auto c = constant(v);
  return c && c->isNone();
}

std::optional<double> number(const Value* v) {
  auto c = constant(v);
  if (!c) return std::nullopt;
  if (c->isDouble()) return c->toDouble();
  if (c->isInt()) return static_cast<double>(c->toInt());
  return std::nullopt;
}

std::optional<bool> boolean(const Value* v) {
  auto c = constant(v);
  if (!c || !c->isBool()) return std::nullopt;
  return c->toBool();
}

struct Walk {
  NetSpec spec;
  const Value* cur = nullptr;
  std::int64_t width = 0;
  bool rank1 = false;      // the activation lost its last dimension (a matmul by a vector)
  bool squeezed = false;   // an explicit squeeze: nothing may follow
  // For each activation so far: how many layers had been emitted when it was made (where
  // a save goes, should a residual add need it) and its width.
  std::map<const Value*, std::pair<std::size_t, std::int64_t>> made;
  std::map<const Value*, int> slot_of;
  // Scalars worked out from shapes: a module's checks of its input's rank (BatchNorm's
  // "expected 2D or 3D input") are evaluated for [rows, columns] and dropped when they pass.
  std::map<const Value*, c10::IValue> known;
  std::vector<std::pair<std::size_t, int>> saves;  // (position, slot)

  void emit(NetLayer layer) {
    layer.in = width;
    if (layer.op != NetOp::kLinear) layer.out = width;
    width = layer.out;
    spec.layers.push_back(std::move(layer));
  }

  void elementwise(NetOp op, float alpha = 0) {
    NetLayer l;
    l.op = op;
    l.alpha = alpha;
    emit(std::move(l));
  }

  Status linear(const Value* weight, const Value* bias, bool transposed, const std::string& what);
  Status add(const Node* n);
  Status step(const Node* n);
  std::optional<Status> scalar(const Node* n);

  std::optional<c10::IValue> value(const Value* v) const {
    if (auto it = known.find(v); it != known.end()) return it->second;
    return constant(v);
  }
};

Status Walk::linear(const Value* weight, const Value* bias, bool transposed, const std::string& what) {
  std::vector<std::int64_t> shape;
  auto w = tensor_constant(weight, shape, what + ": the weight");
  if (!w.ok()) return w.status();
  NetLayer l;
  l.op = NetOp::kLinear;
  if (shape.size() == 1 && transposed) {  // x @ v: one output, and the last dimension goes
    if (shape[0] != width) return unsupported(what + ": a vector of " + std::to_string(shape[0]) + " for " + std::to_string(width) + " columns");
    l.out = 1;
    l.weight = std::move(*w);
    rank1 = true;
  } else if (shape.size() == 2) {
    const std::int64_t in = transposed ? shape[0] : shape[1];
    l.out = transposed ? shape[1] : shape[0];
    if (in != width) return unsupported(what + ": takes " + std::to_string(in) + " columns, gets " + std::to_string(width));
    l.weight.assign(static_cast<std::size_t>(in * l.out), 0.0f);
    for (std::int64_t o = 0; o < l.out; ++o) {
      for (std::int64_t i = 0; i < in; ++i) {
        // weight holds W^T (in x out): from W (out x in), or from a matmul's (in x out) as is.
        l.weight[static_cast<std::size_t>(i * l.out + o)] =
            transposed ? (*w)[static_cast<std::size_t>(i * l.out + o)] : (*w)[static_cast<std::size_t>(o * in + i)];
      }
    }
  } else {
    return unsupported(what + ": a weight of rank " + std::to_string(shape.size()));
  }
  if (bias != nullptr && !is_none(bias)) {
    std::vector<std::int64_t> bshape;
    auto b = tensor_constant(bias, bshape, what + ": the bias");
    if (!b.ok()) return b.status();
    if (static_cast<std::int64_t>(b->size()) != l.out) return unsupported(what + ": a bias of the wrong size");
    l.bias = std::move(*b);
  }
  emit(std::move(l));
  return {};
}

// x + constant (a bias, folded into the linear layer just before when it has none), or
// x + an earlier activation (a residual).
Status Walk::add(const Node* n) {
  const std::string what = node_text(n);
  if (n->inputs().size() == 3) {
    auto alpha = number(n->input(2));
    if (!alpha || *alpha != 1.0) return unsupported(what + ": add with alpha other than 1");
  }
  const Value* a = n->input(0);
  const Value* b = n->input(1);
  if (b == cur && a != cur) std::swap(a, b);
  if (a != cur) return unsupported(what + ": does not continue the network's activation");
  if (made.count(b) != 0) {  // residual
    if (made[b].second != width) return unsupported(what + ": adds activations of different widths");
    if (slot_of.count(b) == 0) {
      const int slot = static_cast<int>(slot_of.size());
      slot_of[b] = slot;
      saves.emplace_back(made[b].first, slot);
    }
    NetLayer l;
    l.op = NetOp::kAddSaved;
    l.slot = slot_of[b];
    emit(std::move(l));
    return {};
  }
  std::vector<std::int64_t> shape;
  std::vector<float> c;
  if (auto s = number(b)) {
    c.assign(static_cast<std::size_t>(width), static_cast<float>(*s));
  } else {
    auto t = tensor_constant(b, shape, what + ": the added value");
    if (!t.ok()) return t.status();
    if (t->size() == 1) {
      c.assign(static_cast<std::size_t>(width), (*t)[0]);
    } else if (static_cast<std::int64_t>(t->size()) == width && shape.back() == width) {
      c = std::move(*t);
    } else {
      return unsupported(what + ": adds a constant that does not broadcast over the columns");
    }
  }
  NetLayer* last = spec.layers.empty() ? nullptr : &spec.layers.back();
  const bool fold = last != nullptr && last->op == NetOp::kLinear && last->bias.empty() &&
                    std::none_of(saves.begin(), saves.end(), [&](const auto& s) { return s.first == spec.layers.size(); });
  if (fold) {
    last->bias = std::move(c);
    return {};
  }
  NetLayer l;
  l.op = NetOp::kAffine;
  l.weight.assign(static_cast<std::size_t>(width), 1.0f);
  l.bias = std::move(c);
  emit(std::move(l));
  return {};
}

// Nodes that compute scalars (rank checks and their branches): nullopt when `n` is not one.
std::optional<Status> Walk::scalar(const Node* n) {
  const std::string kind = n->kind().toQualString();
  const std::string what = node_text(n);
  if (kind == "aten::dim") {
    if (made.count(n->input(0)) == 0) return unsupported(what + ": the rank of something other than an activation");
    known[n->output()] = c10::IValue(static_cast<std::int64_t>(rank1 && n->input(0) == cur ? 1 : 2));
    return Status();
  }
  static const char* const kCompare[] = {"aten::eq", "aten::ne", "aten::lt", "aten::le", "aten::gt", "aten::ge"};
  if (std::find(std::begin(kCompare), std::end(kCompare), kind) != std::end(kCompare)) {
    auto a = value(n->input(0)), b = value(n->input(1));
    if (!a || !b || !a->isInt() || !b->isInt()) return unsupported(what + ": compares values not known at load");
    const std::int64_t x = a->toInt(), y = b->toInt();
    const bool r = kind == "aten::eq" ? x == y : kind == "aten::ne" ? x != y : kind == "aten::lt" ? x < y
                 : kind == "aten::le" ? x <= y : kind == "aten::gt" ? x > y : x >= y;
    known[n->output()] = c10::IValue(r);
    return Status();
  }
  if (kind == "aten::__not__" || kind == "aten::__and__" || kind == "aten::__or__") {
    auto a = value(n->input(0));
    auto b = n->inputs().size() > 1 ? value(n->input(1)) : a;
    if (!a || !b || !a->isBool() || !b->isBool()) return unsupported(what + ": logic on values not known at load");
    known[n->output()] = c10::IValue(kind == "aten::__not__" ? !a->toBool()
                                     : kind == "aten::__and__" ? a->toBool() && b->toBool()
                                                               : a->toBool() || b->toBool());
    return Status();
  }
  if (kind == "prim::RaiseException") return unsupported(what + ": the model raises for a [rows, columns] input");
  if (kind == "prim::If") {
    auto cond = value(n->input(0));
    if (!cond || !cond->isBool()) return unsupported(what + ": a branch on a value not known at load");
    const torch::jit::Block* taken = n->blocks()[cond->toBool() ? 0 : 1];
    for (const Node* inner : taken->nodes()) {
      if (inner->kind() == c10::prim::Constant) continue;
      EMBER_RETURN_IF_ERROR(step(inner));
    }
    for (std::size_t i = 0; i < n->outputs().size(); ++i) {
      auto v = value(taken->outputs()[i]);
      if (!v) return unsupported(what + ": a branch that yields a tensor");
      known[n->outputs()[i]] = *v;
    }
    return Status();
  }
  return std::nullopt;
}

Status Walk::step(const Node* n) {
  if (auto handled = scalar(n)) return *handled;
  const std::string kind = n->kind().toQualString();
  const std::string what = node_text(n);
  if (squeezed) return unsupported(what + ": follows the squeeze of the output");
  if (n->outputs().size() != 1) return unsupported(what + ": more than one output");
  if (n->inputs().empty() || (n->input(0) != cur && kind != "aten::add" && kind != "aten::add_")) {
    return unsupported(what + ": does not continue the network's activation");
  }
  if (kind == "aten::linear") {
    EMBER_RETURN_IF_ERROR(linear(n->input(1), n->input(2), false, what));
  } else if (kind == "aten::matmul" || kind == "aten::mm") {
    EMBER_RETURN_IF_ERROR(linear(n->input(1), nullptr, true, what));
  } else if (kind == "aten::add" || kind == "aten::add_") {
    EMBER_RETURN_IF_ERROR(add(n));
  } else if (kind == "aten::relu" || kind == "aten::relu_") {
    elementwise(NetOp::kRelu);
  } else if (kind == "aten::sigmoid" || kind == "aten::sigmoid_") {
    elementwise(NetOp::kSigmoid);
  } else if (kind == "aten::tanh" || kind == "aten::tanh_") {
    elementwise(NetOp::kTanh);
  } else if (kind == "aten::leaky_relu" || kind == "aten::leaky_relu_") {
    auto slope = number(n->input(1));
    if (!slope) return unsupported(what + ": a slope that is not a constant");
    elementwise(NetOp::kLeakyRelu, static_cast<float>(*slope));
  } else if (kind == "aten::gelu" || kind == "aten::gelu_") {
    auto approximate = n->inputs().size() > 1 ? constant(n->input(1)) : std::optional<c10::IValue>(c10::IValue("none"));
    if (!approximate || !approximate->isString()) return unsupported(what + ": an approximation that is not a constant");
    const std::string mode = approximate->toStringRef();
    if (mode != "none" && mode != "tanh") return unsupported(what + ": approximation '" + mode + "'");
    elementwise(mode == "tanh" ? NetOp::kGeluTanh : NetOp::kGelu);
  } else if (kind == "aten::softmax") {
    auto dim = number(n->input(1));
    if (!dim || !(*dim == -1 || (*dim == 1 && !rank1))) return unsupported(what + ": softmax not over the last dimension");
    if (n->inputs().size() > 2 && !is_none(n->input(2))) return unsupported(what + ": softmax with a dtype");
    elementwise(NetOp::kSoftmax);
  } else if (kind == "aten::layer_norm") {
    auto shape = constant(n->input(1));
    if (!shape || !shape->isIntList() || shape->toIntList().size() != 1 || shape->toIntList().get(0) != width) {
      return unsupported(what + ": normalizes other than the last dimension");
    }
    NetLayer l;
    l.op = NetOp::kLayerNorm;
    std::vector<std::int64_t> s;
    for (int k : {2, 3}) {
      if (is_none(n->input(static_cast<std::size_t>(k)))) continue;
      auto v = tensor_constant(n->input(static_cast<std::size_t>(k)), s, what);
      if (!v.ok()) return v.status();
      (k == 2 ? l.weight : l.bias) = std::move(*v);
    }
    auto eps = number(n->input(4));
    if (!eps) return unsupported(what + ": eps is not a constant");
    l.alpha = static_cast<float>(*eps);
    emit(std::move(l));
  } else if (kind == "aten::batch_norm") {
    auto training = boolean(n->input(5));
    auto eps = number(n->input(7));
    if (!training || *training || !eps) return unsupported(what + ": batch norm in training mode");
    std::vector<std::vector<float>> p(4);
    std::vector<std::int64_t> s;
    for (int k = 0; k < 4; ++k) {
      if (is_none(n->input(static_cast<std::size_t>(k + 1)))) continue;
      auto v = tensor_constant(n->input(static_cast<std::size_t>(k + 1)), s, what);
      if (!v.ok()) return v.status();
      if (static_cast<std::int64_t>(v->size()) != width) return unsupported(what + ": a parameter of the wrong size");
      p[static_cast<std::size_t>(k)] = std::move(*v);
    }
    if (p[2].empty() || p[3].empty()) return unsupported(what + ": no running statistics");
    NetLayer l;
    l.op = NetOp::kAffine;
    for (std::int64_t c = 0; c < width; ++c) {
      const auto k = static_cast<std::size_t>(c);
      const double gamma = p[0].empty() ? 1.0 : p[0][k], beta = p[1].empty() ? 0.0 : p[1][k];
      const double scale = gamma / std::sqrt(static_cast<double>(p[3][k]) + *eps);
      l.weight.push_back(static_cast<float>(scale));
      l.bias.push_back(static_cast<float>(beta - p[2][k] * scale));
    }
    emit(std::move(l));
  } else if (kind == "aten::dropout" || kind == "aten::dropout_" || kind == "aten::feature_dropout") {
    auto train = boolean(n->input(2));
    if (!train || *train) return unsupported(what + ": dropout in training mode");
    // The identity in eval: the output is the activation.
  } else if (kind == "aten::squeeze" || kind == "aten::squeeze_") {
    auto dim = n->inputs().size() > 1 ? number(n->input(1)) : std::optional<double>();
    if (!dim || !(*dim == -1 || *dim == 1) || width != 1 || rank1) return unsupported(what + ": squeezes other than a last dimension of 1");
    squeezed = true;
  } else {
    return unsupported(what + ": " + kind + " has no native kernel");
  }
  cur = n->output();
  made[cur] = {spec.layers.size(), width};
  return {};
}

}  // namespace

Result<NetSpec> lower_module(const torch::jit::Module& module) {
  torch::jit::Module frozen;
  try {
    // Parameters become constants; numerics are kept (no folding of batch norms).
    frozen = torch::jit::freeze(module, std::nullopt, /*optimize_numerics=*/false);
  } catch (const std::exception& e) {
    return unsupported(std::string("cannot freeze forward(): ") + e.what());
  }
  auto graph = frozen.get_method("forward").graph();
  const auto inputs = graph->inputs();
  if (inputs.size() != 2) return unsupported("forward() takes " + std::to_string(inputs.size() - 1) + " inputs, not 1");
  const Value* x = inputs[1];
  Walk walk;
  walk.cur = x;
  // The input's width: the first linear layer says it (nothing before it may need it).
  for (const Node* n : graph->nodes()) {
    const std::string kind = n->kind().toQualString();
    if (kind == "prim::Constant") continue;
    if ((kind == "aten::linear" || kind == "aten::matmul" || kind == "aten::mm") && n->input(0) == x) {
      auto c = constant(n->input(1));
      if (c && c->isTensor() && c->toTensor().dim() >= 1) {
        const auto& t = c->toTensor();
        walk.width = kind == "aten::linear" ? t.size(t.dim() - 1) : t.size(0);
      }
    }
    break;
  }
  if (walk.width == 0) return unsupported("forward() does not start with a linear layer on its input");
  walk.spec.inputs = walk.width;
  walk.made[x] = {0, walk.width};
  try {
    for (const Node* n : graph->nodes()) {
      if (n->kind() == c10::prim::Constant) continue;
      EMBER_RETURN_IF_ERROR(walk.step(n));
    }
  } catch (const std::exception& e) {
    return unsupported(std::string("reading the graph: ") + e.what());
  }
  if (graph->outputs().size() != 1 || graph->outputs()[0] != walk.cur) {
    return unsupported("forward() returns something other than the network's last activation");
  }
  // Saves go where their activation was made (latest first, so positions stay right).
  std::sort(walk.saves.begin(), walk.saves.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [position, slot] : walk.saves) {
    NetLayer save;
    save.op = NetOp::kSave;
    save.slot = slot;
    const std::int64_t w = position == 0 ? walk.spec.inputs : walk.spec.layers[position - 1].out;
    save.in = save.out = w;
    walk.spec.layers.insert(walk.spec.layers.begin() + static_cast<std::ptrdiff_t>(position), std::move(save));
  }
  walk.spec.squeeze = walk.rank1 || walk.squeezed;
  EMBER_RETURN_IF_ERROR(walk.spec.check());
  return std::move(walk.spec);
}

}  // namespace ember::detail
