#include <catch2/catch.hpp>

#include <memory>
#include <set>
#include <string>

#include "ember/status.hpp"

using ember::Result;
using ember::Status;
using ember::StatusCode;

TEST_CASE("an OK status has no message and prints as OK", "[status]") {
  Status s;
  CHECK(s.ok());
  CHECK(s.code() == StatusCode::kOk);
  CHECK(s.message().empty());
  CHECK(s.to_string() == "OK");
  CHECK(Status(StatusCode::kOk, "dropped").message().empty());
}

TEST_CASE("an error status names its code and message", "[status]") {
  Status s = ember::invalid_argument("/age: 212 is greater than the maximum 120");
  CHECK_FALSE(s.ok());
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.to_string() == "InvalidArgument: /age: 212 is greater than the maximum 120");
  CHECK(s.with_context("record 3").to_string() == "InvalidArgument: record 3: /age: 212 is greater than the maximum 120");
  CHECK(Status().with_context("x").ok());
}

TEST_CASE("every status code has a distinct name", "[status]") {
  std::set<std::string_view> names;
  for (int c = 0; c <= 15; ++c) names.insert(ember::status_code_name(static_cast<StatusCode>(c)));
  CHECK(names.size() == 16);
  CHECK(ember::status_code_name(static_cast<StatusCode>(200)) == "Unknown");
  CHECK(ember::data_loss("x").code() == StatusCode::kDataLoss);
  CHECK(ember::not_found("x").code() == StatusCode::kNotFound);
  CHECK(ember::failed_precondition("x").code() == StatusCode::kFailedPrecondition);
  CHECK(ember::resource_exhausted("x").code() == StatusCode::kResourceExhausted);
  CHECK(ember::internal_error("x").code() == StatusCode::kInternal);
  CHECK(ember::unimplemented("x").code() == StatusCode::kUnimplemented);
  CHECK(ember::out_of_range("x").code() == StatusCode::kOutOfRange);
}

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return ember::invalid_argument("not positive: " + std::to_string(v));
  return v;
}
Status twice_positive(int v, int& out) {
  auto r = parse_positive(v);
  EMBER_RETURN_IF_ERROR(r.status());
  out = *r * 2;
  return {};
}
}  // namespace

TEST_CASE("Result holds a value or an error", "[status]") {
  auto good = parse_positive(4);
  REQUIRE(good.ok());
  CHECK(*good == 4);
  CHECK(good.status().ok());
  auto bad = parse_positive(-1);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "not positive: -1");
  CHECK(bad.value_or(9) == 9);

  int out = 0;
  CHECK(twice_positive(5, out).ok());
  CHECK(out == 10);
  CHECK(twice_positive(0, out).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Result of an OK status without a value becomes Internal", "[status]") {
  Result<int> r{Status()};
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInternal);
}

TEST_CASE("Result moves its value out", "[status]") {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(3);
  std::unique_ptr<int> p = std::move(r).value();
  REQUIRE(p);
  CHECK(*p == 3);
}
