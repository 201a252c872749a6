#pragma once

/// ember::Tensor: a small, dependency-free n-dimensional array (dtype, shape, one
/// contiguous row-major buffer on a device). It either owns its buffer (shared by
/// copies, like torch::Tensor) or is a zero-copy view of memory the caller owns.
/// ember/torch.hpp converts to and from torch::Tensor without copying.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ember/export.hpp"
#include "ember/status.hpp"

namespace ember {

/// Element types. float16/bfloat16 are storage only: ember moves them, it does no
/// arithmetic on them (except the finite check).
enum class DType : std::uint8_t { kFloat32, kFloat64, kFloat16, kBFloat16, kInt64, kInt32, kInt8, kUInt8, kBool };

/// Bytes per element.
EMBER_API std::size_t dtype_size(DType dtype) noexcept;
/// "float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool".
EMBER_API std::string_view dtype_name(DType dtype) noexcept;
/// The inverse of dtype_name; InvalidArgument for an unknown name.
EMBER_API Result<DType> parse_dtype(std::string_view name);
EMBER_API bool is_floating(DType dtype) noexcept;

/// The C++ type stored for each dtype (bool is stored as one byte, like torch).
template <typename T>
inline constexpr bool kHasDType = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                  std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::int32_t> ||
                                  std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> ||
                                  std::is_same_v<T, bool>;
template <typename T>
constexpr DType dtype_of() noexcept {
  static_assert(kHasDType<std::remove_cv_t<T>>, "no ember::DType for this C++ type");
  using U = std::remove_cv_t<T>;
  if constexpr (std::is_same_v<U, float>) return DType::kFloat32;
  else if constexpr (std::is_same_v<U, double>) return DType::kFloat64;
  else if constexpr (std::is_same_v<U, std::int64_t>) return DType::kInt64;
  else if constexpr (std::is_same_v<U, std::int32_t>) return DType::kInt32;
  else if constexpr (std::is_same_v<U, std::int8_t>) return DType::kInt8;
  else if constexpr (std::is_same_v<U, std::uint8_t>) return DType::kUInt8;
  else return DType::kBool;
}

/// "[2, 3]"; "[]" for a 0-dim shape.
EMBER_API std::string shape_to_string(std::span<const std::int64_t> shape);

/// Where a buffer lives.
struct EMBER_API Device {
  enum class Type : std::uint8_t { kCpu, kCuda };
  Type type = Type::kCpu;
  int index = 0;  ///< the CUDA ordinal; 0 for the CPU

  static Device cpu() noexcept { return {}; }
  static Device cuda(int index = 0) noexcept { return {Type::kCuda, index}; }
  /// "cpu", "cuda" (= cuda:0) or "cuda:N"; InvalidArgument otherwise.
  static Result<Device> parse(std::string_view text);
  [[nodiscard]] bool is_cpu() const noexcept { return type == Type::kCpu; }
  [[nodiscard]] bool is_cuda() const noexcept { return type == Type::kCuda; }
  /// "cpu" or "cuda:N".
  [[nodiscard]] std::string to_string() const;
  friend bool operator==(const Device&, const Device&) noexcept = default;
};

/// A dense, contiguous, row-major n-dimensional array.
///
/// Copies share the buffer (cheap, like torch::Tensor); clone() makes a deep copy.
/// A default-constructed Tensor is undefined (defined() is false). Reading a Tensor
/// from many threads is safe; writing its elements while others read is not.
class EMBER_API Tensor {
 public:
  Tensor() = default;

  /// A zero-filled host tensor that owns its buffer. InvalidArgument for a negative
  /// dimension, ResourceExhausted when the size overflows or cannot be allocated.
  static Result<Tensor> zeros(DType dtype, std::vector<std::int64_t> shape);

  /// A host tensor that owns a copy of `values`; the shape's element count must equal
  /// values.size().
  template <typename T>
  static Result<Tensor> from_values(std::span<const T> values, std::vector<std::int64_t> shape) {
    return copy_of(values.data(), values.size(), dtype_of<T>(), std::move(shape));
  }
  template <typename T>
  static Result<Tensor> from_values(const std::vector<T>& values, std::vector<std::int64_t> shape) {
    return from_values(std::span<const T>(values), std::move(shape));
  }

  /// A zero-copy view of caller memory: the caller keeps `data` alive and unchanged
  /// for as long as this tensor (or any copy of it) is in use. The element count of
  /// `shape` must equal data.size().
  template <typename T>
  static Result<Tensor> view(std::span<T> data, std::vector<std::int64_t> shape) {
    return view_of(const_cast<std::remove_cv_t<T>*>(data.data()), data.size(), dtype_of<T>(), std::move(shape),
                   Device::cpu());
  }

  template <typename T>
  static Result<Tensor> view(std::vector<T>& data, std::vector<std::int64_t> shape) {
    return view(std::span<T>(data), std::move(shape));
  }

  /// A zero-copy view of `data` (host or device memory). Same lifetime rule as view().
  static Result<Tensor> view_bytes(void* data, DType dtype, std::vector<std::int64_t> shape,
                                   Device device = Device::cpu());

  /// Takes shared ownership of a buffer that something else allocated: `keep_alive`
  /// is held (and released with the last copy of the tensor) so the buffer stays valid.
  /// ember/torch.hpp uses this to wrap a torch::Tensor without copying.
  static Result<Tensor> adopt(void* data, DType dtype, std::vector<std::int64_t> shape, Device device,
                              std::shared_ptr<const void> keep_alive);

  [[nodiscard]] bool defined() const noexcept { return defined_; }
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  [[nodiscard]] const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  [[nodiscard]] std::int64_t dim() const noexcept { return static_cast<std::int64_t>(shape_.size()); }
  /// Size of dimension i; negative i counts from the end. Precondition: -dim() <= i < dim().
  [[nodiscard]] std::int64_t size(std::int64_t i) const noexcept {
    return shape_[static_cast<std::size_t>(i < 0 ? i + dim() : i)];
  }
  [[nodiscard]] std::int64_t numel() const noexcept { return numel_; }
  [[nodiscard]] std::size_t nbytes() const noexcept { return static_cast<std::size_t>(numel_) * dtype_size(dtype_); }
  [[nodiscard]] Device device() const noexcept { return device_; }
  /// True when the tensor holds (a share of) its buffer; false for a view of caller memory.
  [[nodiscard]] bool owns_data() const noexcept { return owner_ != nullptr; }
  /// True when this tensor owns its buffer and no other tensor shares it: writing into
  /// it then changes nothing anyone else holds.
  [[nodiscard]] bool unique() const noexcept { return owner_ != nullptr && owner_.use_count() == 1; }

  [[nodiscard]] void* data() const noexcept { return data_; }

  /// The elements as a span of T; empty when T does not match dtype() or the tensor
  /// is not on the host. Prefer get<T>(), which says why.
  template <typename T>
  [[nodiscard]] std::span<T> values() const noexcept {
    if (dtype_of<T>() != dtype_ || !device_.is_cpu() || data_ == nullptr) return {};
    return {static_cast<T*>(data_), static_cast<std::size_t>(numel_)};
  }

  /// The elements as a span of T, checked: InvalidArgument when T is not dtype()
  /// ("float64, read as float32"), FailedPrecondition for an undefined tensor or one
  /// that is not in host memory.
  template <typename T>
  [[nodiscard]] Result<std::span<T>> get() const {
    EMBER_RETURN_IF_ERROR(check_read(dtype_of<T>()));
    return std::span<T>(static_cast<T*>(data_), static_cast<std::size_t>(numel_));
  }

  /// Element `index` (row-major, over all elements) as a double, whatever the numeric
  /// dtype (float16 and bfloat16 included). OutOfRange past numel(); FailedPrecondition
  /// for an undefined or device tensor.
  [[nodiscard]] Result<double> at(std::size_t index) const;

  /// Rows [begin, end) of the first dimension: a zero-copy view that shares the buffer
  /// (and keeps an owned one alive). OutOfRange unless 0 <= begin <= end <= size(0);
  /// FailedPrecondition for a 0-dim or undefined tensor.
  [[nodiscard]] Result<Tensor> slice_rows(std::int64_t begin, std::int64_t end) const;

  /// The tensors stacked along the first dimension into one new host tensor that owns
  /// its buffer (e.g. the rows of several requests, gathered for one model call).
  /// InvalidArgument for none, or for tensors whose dtype or other dimensions differ;
  /// FailedPrecondition for a device tensor; ResourceExhausted when memory runs out.
  static Result<Tensor> concat_rows(std::span<const Tensor> tensors);

  /// A deep copy on the host that owns its buffer. FailedPrecondition for a device tensor.
  [[nodiscard]] Result<Tensor> clone() const;

  /// The same buffer with another shape of equal element count (zero-copy).
  [[nodiscard]] Result<Tensor> reshape(std::vector<std::int64_t> shape) const;

  /// True when no element is NaN or +-Inf (always true for integer and bool tensors).
  /// FailedPrecondition for a device tensor.
  [[nodiscard]] Result<bool> all_finite() const;

  /// "float32[2, 3] cpu".
  [[nodiscard]] std::string describe() const;

 private:
  Status check_read(DType want) const;
  static Result<Tensor> copy_of(const void* data, std::size_t count, DType dtype, std::vector<std::int64_t> shape);
  static Result<Tensor> view_of(void* data, std::size_t count, DType dtype, std::vector<std::int64_t> shape,
                                Device device);
  static Result<Tensor> make(void* data, DType dtype, std::vector<std::int64_t> shape, Device device,
                             std::shared_ptr<const void> owner);

  void* data_ = nullptr;
  std::shared_ptr<const void> owner_;
  std::vector<std::int64_t> shape_;
  std::int64_t numel_ = 0;
  DType dtype_ = DType::kFloat32;
  Device device_;
  bool defined_ = false;
};

/// An ordered list of uniquely named tensors: the named inputs and the outputs of a
/// model. Lookup by name is linear (models have a handful of inputs and outputs).
class EMBER_API NamedTensors {
 public:
  struct Entry {
    std::string name;
    Tensor tensor;
  };

  /// Appends; InvalidArgument for an empty name, AlreadyExists for a repeated one.
  Status add(std::string name, Tensor tensor);

  /// The tensor called `name`, or nullptr.
  [[nodiscard]] const Tensor* find(std::string_view name) const noexcept;
  /// The tensor called `name` (valid while this list is unchanged); NotFound naming the
  /// names there are.
  [[nodiscard]] Result<const Tensor*> get(std::string_view name) const;
  /// Its elements as T, checked (NotFound, then as Tensor::get<T>()).
  template <typename T>
  [[nodiscard]] Result<std::span<const T>> values(std::string_view name) const {
    auto t = get(name);
    if (!t.ok()) return t.status();
    auto v = (*t)->get<const T>();
    if (!v.ok()) return v.status().with_context("'" + std::string(name) + "'");
    return *v;
  }
  /// Rows [begin, end) of every tensor (zero-copy views), e.g. one request's share of
  /// a gathered batch's answer. Errors as Tensor::slice_rows, naming the tensor.
  [[nodiscard]] Result<NamedTensors> slice_rows(std::int64_t begin, std::int64_t end) const;
  /// Removes every entry (keeps the capacity).
  void clear() noexcept { entries_.clear(); }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] const Entry& operator[](std::size_t i) const { return entries_[i]; }
  [[nodiscard]] auto begin() const noexcept { return entries_.begin(); }
  [[nodiscard]] auto end() const noexcept { return entries_.end(); }
  void reserve(std::size_t n) { entries_.reserve(n); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace ember
