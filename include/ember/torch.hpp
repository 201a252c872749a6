#pragma once

/// Optional interop with LibTorch: converts between ember::Tensor and torch::Tensor
/// without copying. This is the one ember header that includes torch; a program that
/// includes it must itself find and link LibTorch (find_package(Torch)).

#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ember/status.hpp"
#include "ember/tensor.hpp"

namespace ember {

/// The torch dtype for an ember dtype.
inline at::ScalarType to_torch_dtype(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat32: return at::kFloat;
    case DType::kFloat64: return at::kDouble;
    case DType::kFloat16: return at::kHalf;
    case DType::kBFloat16: return at::kBFloat16;
    case DType::kInt64: return at::kLong;
    case DType::kInt32: return at::kInt;
    case DType::kInt8: return at::kChar;
    case DType::kUInt8: return at::kByte;
    case DType::kBool: return at::kBool;
  }
  return at::kFloat;
}

/// The ember dtype for a torch dtype; InvalidArgument for one ember does not carry.
inline Result<DType> from_torch_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return DType::kFloat32;
    case at::kDouble: return DType::kFloat64;
    case at::kHalf: return DType::kFloat16;
    case at::kBFloat16: return DType::kBFloat16;
    case at::kLong: return DType::kInt64;
    case at::kInt: return DType::kInt32;
    case at::kChar: return DType::kInt8;
    case at::kByte: return DType::kUInt8;
    case at::kBool: return DType::kBool;
    default: return invalid_argument(std::string("torch dtype ") + c10::toString(type) + " has no ember equivalent");
  }
}

/// A torch::Tensor over the same memory. The torch tensor keeps the ember tensor's
/// buffer alive; for a view of caller memory the caller's lifetime rule still holds.
/// InvalidArgument for an undefined tensor.
inline Result<torch::Tensor> to_torch(const Tensor& tensor) {
  if (!tensor.defined()) return invalid_argument("cannot convert an undefined ember::Tensor");
  const Device d = tensor.device();
  const auto options = torch::TensorOptions()
                           .dtype(to_torch_dtype(tensor.dtype()))
                           .device(d.is_cuda() ? torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d.index))
                                               : torch::Device(torch::kCPU));
  if (tensor.owns_data()) {
    auto keep = std::make_shared<Tensor>(tensor);
    return torch::from_blob(tensor.data(), tensor.shape(), [keep](void*) mutable { keep.reset(); }, options);
  }
  return torch::from_blob(tensor.data(), tensor.shape(), options);
}

/// An ember::Tensor over the same memory; it keeps the torch tensor's storage alive.
/// InvalidArgument for an undefined or non-contiguous tensor (call .contiguous()
/// first; that copies) or an unsupported dtype or device.
inline Result<Tensor> from_torch(const torch::Tensor& tensor) {
  if (!tensor.defined()) return invalid_argument("cannot convert an undefined torch::Tensor");
  if (!tensor.is_contiguous()) return invalid_argument("torch::Tensor is not contiguous; call .contiguous() first");
  auto dtype = from_torch_dtype(tensor.scalar_type());
  if (!dtype.ok()) return dtype.status();
  Device device;
  if (tensor.is_cuda()) {
    device = Device::cuda(tensor.device().index());
  } else if (!tensor.is_cpu()) {
    return invalid_argument("torch::Tensor on device " + tensor.device().str() + " is not supported");
  }
  std::vector<std::int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  auto keep = std::make_shared<torch::Tensor>(tensor);
  return Tensor::adopt(tensor.data_ptr(), *dtype, std::move(shape), device, std::move(keep));
}

}  // namespace ember
