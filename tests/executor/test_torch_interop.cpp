// LibTorch's glog-style CHECK macro clashes with Catch's: include torch first, drop it.
#include "ember/torch.hpp"
#undef CHECK

#include <catch2/catch.hpp>

#include <vector>

using ember::DType;
using ember::StatusCode;
using ember::Tensor;

TEST_CASE("to_torch shares the buffer and keeps an owning tensor alive", "[interop]") {
  torch::Tensor t;
  void* data = nullptr;
  {
    auto e = Tensor::from_values(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
    REQUIRE(e.ok());
    data = e->data();
    auto converted = ember::to_torch(*e);
    REQUIRE(converted.ok());
    t = *converted;
  }
  CHECK(t.data_ptr() == data);
  CHECK(t.sizes() == torch::IntArrayRef({2, 3}));
  CHECK(t.scalar_type() == torch::kFloat);
  CHECK(t.sum().item<float>() == 21.0f);
  CHECK(ember::to_torch(Tensor()).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("from_torch shares the storage and keeps it alive", "[interop]") {
  Tensor e;
  void* data = nullptr;
  {
    torch::Tensor t = torch::arange(6, torch::kLong).reshape({3, 2});
    data = t.data_ptr();
    auto converted = ember::from_torch(t);
    REQUIRE(converted.ok());
    e = *converted;
  }
  CHECK(e.data() == data);
  CHECK(e.dtype() == DType::kInt64);
  CHECK(e.shape() == std::vector<std::int64_t>{3, 2});
  CHECK(e.values<std::int64_t>()[5] == 5);
}

TEST_CASE("from_torch refuses what it cannot share", "[interop]") {
  torch::Tensor t = torch::ones({3, 4});
  auto s = ember::from_torch(t.t()).status();
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(s.message(), Catch::Contains("not contiguous"));
  CHECK(ember::from_torch(torch::ones({2}, torch::kComplexFloat)).status().code() == StatusCode::kInvalidArgument);
  CHECK(ember::from_torch(torch::Tensor()).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("every ember dtype round-trips through torch", "[interop]") {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32,
                  DType::kInt8, DType::kUInt8, DType::kBool}) {
    auto e = Tensor::zeros(d, {2});
    REQUIRE(e.ok());
    auto t = ember::to_torch(*e);
    REQUIRE(t.ok());
    auto back = ember::from_torch(*t);
    REQUIRE(back.ok());
    CHECK(back->dtype() == d);
    CHECK(back->data() == e->data());
  }
}
