#include "ember/tensor.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace ember {

std::size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64: return 8;
    case DType::kFloat32:
    case DType::kInt32: return 4;
    case DType::kFloat16:
    case DType::kBFloat16: return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool: return 1;
  }
  return 1;
}

std::string_view dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
    case DType::kInt8: return "int8";
    case DType::kUInt8: return "uint8";
    case DType::kBool: return "bool";
  }
  return "unknown";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32,
                  DType::kInt8, DType::kUInt8, DType::kBool}) {
    if (dtype_name(d) == name) return d;
  }
  return invalid_argument("unknown dtype '" + std::string(name) +
                          "' (expected float32, float64, float16, bfloat16, int64, int32, int8, uint8 or bool)");
}

bool is_floating(DType dtype) noexcept {
  return dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16;
}

Result<Device> Device::parse(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  constexpr std::string_view kCudaPrefix = "cuda:";
  if (text.substr(0, kCudaPrefix.size()) == kCudaPrefix) {
    const std::string_view digits = text.substr(kCudaPrefix.size());
    int index = -1;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && !digits.empty() && index >= 0) {
      return Device::cuda(index);
    }
  }
  return invalid_argument("bad device '" + std::string(text) + "' (expected cpu, cuda or cuda:N)");
}

std::string Device::to_string() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

std::string shape_to_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

namespace {

// Element count of `shape`, or an error for negative sizes and byte counts that overflow.
Result<std::int64_t> checked_numel(const std::vector<std::int64_t>& shape, DType dtype) {
  const auto max_elements = static_cast<std::int64_t>(std::numeric_limits<std::int64_t>::max() / dtype_size(dtype));
  std::int64_t n = 1;
  for (const std::int64_t d : shape) {
    if (d < 0) return invalid_argument("negative dimension in shape " + shape_to_string(shape));
    if (d != 0 && n > max_elements / d) return resource_exhausted("shape " + shape_to_string(shape) + " is too large");
    n *= d;
  }
  return n;
}

}  // namespace

Result<Tensor> Tensor::make(void* data, DType dtype, std::vector<std::int64_t> shape, Device device,
                            std::shared_ptr<const void> owner) {
  auto numel = checked_numel(shape, dtype);
  if (!numel.ok()) return numel.status();
  if (data == nullptr && *numel != 0) return invalid_argument("null data for a tensor of shape " + shape_to_string(shape));
  Tensor t;
  t.data_ = data;
  t.owner_ = std::move(owner);
  t.shape_ = std::move(shape);
  t.numel_ = *numel;
  t.dtype_ = dtype;
  t.device_ = device;
  t.defined_ = true;
  return t;
}

Result<Tensor> Tensor::zeros(DType dtype, std::vector<std::int64_t> shape) {
  auto numel = checked_numel(shape, dtype);
  if (!numel.ok()) return numel.status();
  const std::size_t bytes = static_cast<std::size_t>(*numel) * dtype_size(dtype);
  // One extra byte keeps the pointer non-null and unique for empty tensors.
  void* raw = std::calloc(bytes + 1, 1);
  if (raw == nullptr) return resource_exhausted("cannot allocate " + std::to_string(bytes) + " bytes for a tensor");
  std::shared_ptr<void> owner(raw, [](void* p) { std::free(p); });
  return make(raw, dtype, std::move(shape), Device::cpu(), std::move(owner));
}

Result<Tensor> Tensor::copy_of(const void* data, std::size_t count, DType dtype, std::vector<std::int64_t> shape) {
  auto t = zeros(dtype, std::move(shape));
  if (!t.ok()) return t;
  if (static_cast<std::size_t>(t->numel()) != count) {
    return invalid_argument(std::to_string(count) + " values do not fill shape " + shape_to_string(t->shape()));
  }
  if (count != 0) std::memcpy(t->data(), data, count * dtype_size(dtype));
  return t;
}

Result<Tensor> Tensor::view_of(void* data, std::size_t count, DType dtype, std::vector<std::int64_t> shape,
                               Device device) {
  auto t = make(data, dtype, std::move(shape), device, nullptr);
  if (t.ok() && static_cast<std::size_t>(t->numel()) != count) {
    return invalid_argument(std::to_string(count) + " values do not fill shape " + shape_to_string(t->shape()));
  }
  return t;
}

Result<Tensor> Tensor::view_bytes(void* data, DType dtype, std::vector<std::int64_t> shape, Device device) {
  return make(data, dtype, std::move(shape), device, nullptr);
}

Result<Tensor> Tensor::adopt(void* data, DType dtype, std::vector<std::int64_t> shape, Device device,
                             std::shared_ptr<const void> keep_alive) {
  if (!keep_alive) return invalid_argument("Tensor::adopt needs a keep_alive owner");
  return make(data, dtype, std::move(shape), device, std::move(keep_alive));
}

Result<Tensor> Tensor::clone() const {
  if (!defined_) return invalid_argument("cannot clone an undefined tensor");
  if (!device_.is_cpu()) return failed_precondition("clone() of a tensor on " + device_.to_string());
  return copy_of(data_, static_cast<std::size_t>(numel_), dtype_, shape_);
}

Result<Tensor> Tensor::reshape(std::vector<std::int64_t> shape) const {
  if (!defined_) return invalid_argument("cannot reshape an undefined tensor");
  auto numel = checked_numel(shape, dtype_);
  if (!numel.ok()) return numel.status();
  if (*numel != numel_) {
    return invalid_argument("cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape));
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

namespace {

template <typename T>
bool all_finite_span(const void* data, std::int64_t n) {
  const T* p = static_cast<const T*>(data);
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// float16 and bfloat16: an all-ones exponent means Inf or NaN.
bool all_finite_half(const void* data, std::int64_t n, std::uint16_t exponent_mask) {
  const auto* p = static_cast<const std::uint16_t*>(data);
  for (std::int64_t i = 0; i < n; ++i) {
    if ((p[i] & exponent_mask) == exponent_mask) return false;
  }
  return true;
}

}  // namespace

Result<bool> Tensor::all_finite() const {
  if (!defined_) return invalid_argument("all_finite() of an undefined tensor");
  if (!device_.is_cpu()) return failed_precondition("all_finite() of a tensor on " + device_.to_string());
  switch (dtype_) {
    case DType::kFloat32: return all_finite_span<float>(data_, numel_);
    case DType::kFloat64: return all_finite_span<double>(data_, numel_);
    case DType::kFloat16: return all_finite_half(data_, numel_, 0x7C00);
    case DType::kBFloat16: return all_finite_half(data_, numel_, 0x7F80);
    default: return true;
  }
}

std::string Tensor::describe() const {
  if (!defined_) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_to_string(shape_) + " " + device_.to_string();
}

Status NamedTensors::add(std::string name, Tensor tensor) {
  if (name.empty()) return invalid_argument("tensor name is empty");
  if (find(name) != nullptr) return {StatusCode::kAlreadyExists, "duplicate tensor name '" + name + "'"};
  entries_.push_back({std::move(name), std::move(tensor)});
  return {};
}

const Tensor* NamedTensors::find(std::string_view name) const noexcept {
  for (const auto& e : entries_) {
    if (e.name == name) return &e.tensor;
  }
  return nullptr;
}

}  // namespace ember
