#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ember/tensor.hpp"

using ember::Device;
using ember::DType;
using ember::StatusCode;
using ember::Tensor;

TEST_CASE("dtypes have sizes and names that round-trip", "[tensor]") {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt64, DType::kInt32,
                  DType::kInt8, DType::kUInt8, DType::kBool}) {
    auto parsed = ember::parse_dtype(ember::dtype_name(d));
    REQUIRE(parsed.ok());
    CHECK(*parsed == d);
  }
  CHECK(ember::dtype_size(DType::kFloat64) == 8);
  CHECK(ember::dtype_size(DType::kBFloat16) == 2);
  CHECK(ember::dtype_size(DType::kBool) == 1);
  auto bad = ember::parse_dtype("float128");
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.status().message(), Catch::Contains("float128"));
}

TEST_CASE("devices parse from text", "[tensor]") {
  CHECK(Device::parse("cpu")->is_cpu());
  CHECK(*Device::parse("cuda") == Device::cuda(0));
  CHECK(*Device::parse("cuda:3") == Device::cuda(3));
  CHECK(Device::cuda(2).to_string() == "cuda:2");
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:1x", "CPU", "cuda:99999999999"}) {
    INFO(bad);
    CHECK(Device::parse(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("zeros owns a zero-filled buffer", "[tensor]") {
  auto t = Tensor::zeros(DType::kFloat32, {2, 3});
  REQUIRE(t.ok());
  CHECK(t->defined());
  CHECK(t->owns_data());
  CHECK(t->numel() == 6);
  CHECK(t->nbytes() == 24);
  CHECK(t->dim() == 2);
  CHECK(t->size(-1) == 3);
  CHECK(t->describe() == "float32[2, 3] cpu");
  for (float v : t->values<float>()) CHECK(v == 0.0f);
  CHECK(t->values<double>().empty());  // wrong type: no span

  auto scalar = Tensor::zeros(DType::kInt64, {});
  REQUIRE(scalar.ok());
  CHECK(scalar->numel() == 1);
  auto empty = Tensor::zeros(DType::kInt64, {0, 5});
  REQUIRE(empty.ok());
  CHECK(empty->numel() == 0);
  CHECK(empty->defined());
}

TEST_CASE("shapes that are negative or overflow are rejected", "[tensor]") {
  CHECK(Tensor::zeros(DType::kFloat32, {2, -1}).status().code() == StatusCode::kInvalidArgument);
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max() / 2;
  CHECK(Tensor::zeros(DType::kFloat32, {huge, 4}).status().code() == StatusCode::kResourceExhausted);
  CHECK(Tensor::zeros(DType::kFloat64, {1 << 20, 1 << 20, 1 << 20}).status().code() ==
        StatusCode::kResourceExhausted);
  // Too large to allocate, though it does not overflow.
  CHECK(Tensor::zeros(DType::kUInt8, {std::int64_t{1} << 60}).status().code() == StatusCode::kResourceExhausted);
  CHECK_FALSE(Tensor().defined());
}

TEST_CASE("from_values copies and checks the element count", "[tensor]") {
  std::vector<double> v{1, 2, 3, 4};
  auto t = Tensor::from_values(v, {2, 2});
  REQUIRE(t.ok());
  v[0] = 100;  // a copy: the tensor does not change
  CHECK(t->values<double>()[0] == 1.0);
  CHECK(t->dtype() == DType::kFloat64);
  auto bad = Tensor::from_values(v, {3});
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(bad.status().message(), Catch::Contains("4 values do not fill shape [3]"));
}

TEST_CASE("view shares caller memory without copying", "[tensor]") {
  std::vector<std::int32_t> v{1, 2, 3, 4, 5, 6};
  auto t = Tensor::view(std::span<std::int32_t>(v), {3, 2});
  REQUIRE(t.ok());
  CHECK_FALSE(t->owns_data());
  CHECK(t->data() == v.data());
  v[5] = 60;
  CHECK(t->values<std::int32_t>()[5] == 60);
  CHECK(Tensor::view(std::span<std::int32_t>(v), {4}).status().code() == StatusCode::kInvalidArgument);
  auto from_vector = Tensor::view(v, {6});
  REQUIRE(from_vector.ok());
  CHECK(from_vector->data() == v.data());
  const std::vector<std::int32_t>& readonly = v;
  auto const_view = Tensor::view(std::span<const std::int32_t>(readonly), {2, 3});
  REQUIRE(const_view.ok());
  CHECK(const_view->dtype() == DType::kInt32);
  CHECK(Tensor::view_bytes(nullptr, DType::kFloat32, {2}).status().code() == StatusCode::kInvalidArgument);
  CHECK(Tensor::view_bytes(nullptr, DType::kFloat32, {0}).ok());
}

TEST_CASE("copies share the buffer, clone makes a deep copy", "[tensor]") {
  auto a = Tensor::zeros(DType::kFloat32, {4});
  REQUIRE(a.ok());
  Tensor shared = *a;
  auto deep = a->clone();
  REQUIRE(deep.ok());
  a->values<float>()[0] = 5.0f;
  CHECK(shared.values<float>()[0] == 5.0f);
  CHECK(deep->values<float>()[0] == 0.0f);
  CHECK(Tensor().clone().status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("an adopted buffer lives as long as the last copy", "[tensor]") {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3});
  std::weak_ptr<std::vector<float>> watch = owner;
  Tensor copy;
  {
    auto t = Tensor::adopt(owner->data(), DType::kFloat32, {3}, Device::cpu(), owner);
    REQUIRE(t.ok());
    owner.reset();
    copy = *t;
  }
  CHECK_FALSE(watch.expired());
  CHECK(copy.values<float>()[2] == 3.0f);
  copy = Tensor();
  CHECK(watch.expired());
  float x = 0;
  CHECK(Tensor::adopt(&x, DType::kFloat32, {1}, Device::cpu(), nullptr).status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("reshape keeps the buffer and checks the count", "[tensor]") {
  auto t = Tensor::zeros(DType::kInt8, {2, 6});
  REQUIRE(t.ok());
  auto r = t->reshape({3, 4});
  REQUIRE(r.ok());
  CHECK(r->data() == t->data());
  CHECK(r->shape() == std::vector<std::int64_t>{3, 4});
  CHECK(t->reshape({5}).status().code() == StatusCode::kInvalidArgument);
  CHECK(t->reshape({-12}).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("all_finite finds NaN and Inf in every floating dtype", "[tensor]") {
  std::vector<float> f{1.0f, 2.0f};
  CHECK(*Tensor::from_values(f, {2})->all_finite());
  f[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK_FALSE(*Tensor::from_values(f, {2})->all_finite());
  std::vector<double> d{1.0, -std::numeric_limits<double>::infinity()};
  CHECK_FALSE(*Tensor::from_values(d, {2})->all_finite());
  std::vector<std::uint16_t> half{0x3C00, 0x7C00};  // 1.0, +Inf in float16
  auto h = Tensor::view_bytes(half.data(), DType::kFloat16, {2});
  CHECK_FALSE(*h->all_finite());
  half[1] = 0x4000;
  CHECK(*h->all_finite());
  std::vector<std::uint16_t> bf{0x3F80, 0x7FC0};  // 1.0, NaN in bfloat16
  CHECK_FALSE(*Tensor::view_bytes(bf.data(), DType::kBFloat16, {2})->all_finite());
  std::vector<std::int64_t> ints{1, 2};
  CHECK(*Tensor::from_values(ints, {2})->all_finite());
  float dummy = 0;
  auto on_gpu = Tensor::view_bytes(&dummy, DType::kFloat32, {1}, Device::cuda(0));
  CHECK(on_gpu->all_finite().status().code() == StatusCode::kFailedPrecondition);
  CHECK(on_gpu->values<float>().empty());
}

TEST_CASE("NamedTensors keeps order and refuses bad names", "[tensor]") {
  ember::NamedTensors named;
  auto t = Tensor::zeros(DType::kFloat32, {1});
  CHECK(named.add("b", *t).ok());
  CHECK(named.add("a", *t).ok());
  CHECK(named.add("a", *t).code() == StatusCode::kAlreadyExists);
  CHECK(named.add("", *t).code() == StatusCode::kInvalidArgument);
  REQUIRE(named.size() == 2);
  CHECK(named[0].name == "b");
  CHECK(named.find("a") != nullptr);
  CHECK(named.find("c") == nullptr);
}
