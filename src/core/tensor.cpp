#include "ember/tensor.hpp"

#include <algorithm>
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

Status Tensor::check_read(DType want) const {
  if (!defined_) return failed_precondition("the tensor is undefined");
  if (want != dtype_) {
    return invalid_argument("the tensor is " + std::string(dtype_name(dtype_)) + ", read as " +
                            std::string(dtype_name(want)));
  }
  if (!device_.is_cpu()) return failed_precondition("the tensor is on " + device_.to_string() + ", not in host memory");
  return {};
}

namespace {
float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000U) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1FU;
  std::uint32_t mant = h & 0x3FFU;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400U) == 0);
      bits = sign | static_cast<std::uint32_t>(127 - 15 - e) << 23 | (mant & 0x3FFU) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000U | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
}  // namespace

Result<double> Tensor::at(std::size_t index) const {
  if (!defined_) return failed_precondition("the tensor is undefined");
  if (!device_.is_cpu()) return failed_precondition("the tensor is on " + device_.to_string() + ", not in host memory");
  if (index >= static_cast<std::size_t>(numel_)) {
    return out_of_range("element " + std::to_string(index) + " of a tensor of " + std::to_string(numel_));
  }
  const auto* p = static_cast<const std::byte*>(data_) + index * dtype_size(dtype_);
  const auto read = [p](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (dtype_) {
    case DType::kFloat32: return static_cast<double>(read(float{}));
    case DType::kFloat64: return read(double{});
    case DType::kInt64: return static_cast<double>(read(std::int64_t{}));
    case DType::kInt32: return static_cast<double>(read(std::int32_t{}));
    case DType::kInt8: return static_cast<double>(read(std::int8_t{}));
    case DType::kUInt8: return static_cast<double>(read(std::uint8_t{}));
    case DType::kBool: return read(std::uint8_t{}) != 0 ? 1.0 : 0.0;
    case DType::kFloat16: return static_cast<double>(half_bits_to_float(read(std::uint16_t{})));
    case DType::kBFloat16: {
      const std::uint32_t bits = static_cast<std::uint32_t>(read(std::uint16_t{})) << 16;
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return static_cast<double>(f);
    }
  }
  return internal_error("unknown dtype");
}

Result<Tensor> Tensor::slice_rows(std::int64_t begin, std::int64_t end) const {
  if (!defined_ || shape_.empty()) return failed_precondition("slice_rows needs a tensor with a first dimension");
  if (begin < 0 || begin > end || end > shape_[0]) {
    return out_of_range("rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") of a tensor of " +
                        std::to_string(shape_[0]) + " rows");
  }
  Tensor t = *this;
  const std::size_t row_bytes =
      shape_[0] == 0 ? 0 : nbytes() / static_cast<std::size_t>(shape_[0]);
  t.data_ = data_ == nullptr ? nullptr : static_cast<std::byte*>(data_) + static_cast<std::size_t>(begin) * row_bytes;
  t.shape_[0] = end - begin;
  t.numel_ = shape_[0] == 0 ? 0 : numel_ / shape_[0] * (end - begin);
  return t;
}

Result<Tensor> Tensor::concat_rows(std::span<const Tensor> tensors) {
  if (tensors.empty()) return invalid_argument("concat_rows: no tensors");
  const Tensor& first = tensors[0];
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    const std::string which = "concat_rows: tensor " + std::to_string(i);
    if (!t.defined() || t.dim() < 1) return invalid_argument(which + " has no first dimension");
    if (!t.device().is_cpu()) return failed_precondition(which + " is on " + t.device().to_string());
    if (t.dtype() != first.dtype() || t.dim() != first.dim() ||
        !std::equal(t.shape().begin() + 1, t.shape().end(), first.shape().begin() + 1)) {
      return invalid_argument(which + " is " + t.describe() + ", unlike " + first.describe());
    }
    rows += t.size(0);
  }
  std::vector<std::int64_t> shape = first.shape();
  shape[0] = rows;
  auto out = zeros(first.dtype(), std::move(shape));
  if (!out.ok()) return out.status();
  auto* dst = static_cast<std::byte*>(out->data());
  for (const Tensor& t : tensors) {
    if (t.nbytes() > 0) std::memcpy(dst, t.data(), t.nbytes());
    dst += t.nbytes();
  }
  return out;
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

Result<const Tensor*> NamedTensors::get(std::string_view name) const {
  if (const Tensor* t = find(name)) return t;
  std::string names;
  for (const auto& e : entries_) names += (names.empty() ? "'" : ", '") + e.name + "'";
  return not_found("no output '" + std::string(name) + "' (there are " + (names.empty() ? "none" : names) + ")");
}

Result<NamedTensors> NamedTensors::slice_rows(std::int64_t begin, std::int64_t end) const {
  NamedTensors out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) {
    auto t = e.tensor.slice_rows(begin, end);
    if (!t.ok()) return t.status().with_context("'" + e.name + "'");
    EMBER_RETURN_IF_ERROR(out.add(e.name, std::move(t).value()));
  }
  return out;
}

const Tensor* NamedTensors::find(std::string_view name) const noexcept {
  for (const auto& e : entries_) {
    if (e.name == name) return &e.tensor;
  }
  return nullptr;
}

}  // namespace ember
