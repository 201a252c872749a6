// transform() allocates nothing per row once the pipeline is loaded: every operator new
// of this test program is counted.
#include <catch2/catch.hpp>

#include "counting_new.hpp"
#include "ember/pipeline.hpp"

TEST_CASE("transform allocates nothing per row", "[pipeline][alloc]") {
  auto p = ember::Pipeline::parse(R"({"format": "ember-pipeline", "version": 1,
    "inputs": [{"name": "x", "kind": "number"}, {"name": "c", "kind": "string"}, {"name": "n", "kind": "number"}],
    "transformers": [
      {"name": "num", "columns": ["x"], "steps": [{"type": "simple_imputer", "strategy": "mean", "fill": [2.5]},
                                                  {"type": "standard_scaler", "mean": [1.0], "scale": [2.0]}]},
      {"name": "cat", "columns": ["c"], "steps": [
          {"type": "simple_imputer", "strategy": "constant", "fill": ["a long missing-value marker string"]},
          {"type": "one_hot_encoder", "categories": [["alpha-category-name", "beta-category-name",
                                                      "a long missing-value marker string"]],
           "handle_unknown": "ignore", "drop_idx": [null]}]},
      {"name": "ord", "columns": ["n"], "steps": [{"type": "ordinal_encoder", "categories": [[1, 2, 3]],
                                                  "handle_unknown": "use_encoded_value", "unknown_value": -1}]}],
    "remainder": "drop", "output_names": ["x", "c1", "c2", "c3", "n"]})");
  REQUIRE(p.ok());
  ember::FeatureRow rows[3] = {{{1.0f, 0.0f, 2.0f}, {"", "beta-category-name", ""}},
                               {{NAN, NAN, 7.0f}, {"", "", ""}},
                               {{4.0f, 0.0f, 1.0f}, {"", "an unseen category that is long", ""}}};
  double out[5];
  REQUIRE(p->transform(rows[0], out).ok());  // warm-up
  const std::size_t before = ember_test::allocations();
  for (int i = 0; i < 3000; ++i) {
    if (!p->transform(rows[i % 3], out).ok()) FAIL("transform failed");
  }
  const std::size_t after = ember_test::allocations();
  CHECK(after - before == 0);
  CHECK(out[1] == 0.0f);  // the unseen category: all zeros under handle_unknown=ignore
}
