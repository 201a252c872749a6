#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/linear.hpp"
#include "fixtures.hpp"

using ember::LinearModel;
using ember::LinearOutput;

namespace {

using ember_test::models_dir;
using ember_test::read_json;

LinearModel load(const std::string& name) {
  auto m = LinearModel::load(models_dir() / ("linear_" + name + ".json"));
  INFO(m.status().to_string());
  REQUIRE(m.ok());
  return *m;
}

// Evaluates every row of the case and compares with scikit-learn's `key`, within 1e-6
// (absolute, plus 1e-6 relative for large regression targets).
void check_parity(const LinearModel& model, const nlohmann::json& expected, LinearOutput output, const char* key) {
  std::vector<double> x;
  for (const auto& row : expected.at("x")) {
    for (const auto& v : row) x.push_back(v.get<double>());
  }
  const std::size_t rows = expected.at("x").size();
  const std::size_t width = *model.output_width(output);
  std::vector<double> out(rows * width);
  REQUIRE(model.evaluate(x, rows, output, out).ok());
  double worst = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t k = 0; k < width; ++k) {
      const double want = expected.at(key)[r].is_array() ? expected.at(key)[r][k].get<double>()
                                                         : expected.at(key)[r].get<double>();
      const double got = out[r * width + k];
      worst = std::max(worst, std::abs(got - want) / (1.0 + std::abs(want)));
    }
  }
  INFO(key << ": worst relative difference " << worst);
  CHECK(worst <= 1e-6);
}

}  // namespace

TEST_CASE("linear: binary logistic regression on breast_cancer equals scikit-learn") {
  const auto model = load("cancer_logistic");
  const auto expected = read_json(models_dir() / "linear_cancer_logistic_expected.json");
  CHECK(model.is_classifier());
  CHECK(model.input_width() == 30);
  CHECK(model.classes() == std::vector<std::string>{"0", "1"});
  check_parity(model, expected, LinearOutput::kPredictProba, "predict_proba");
  check_parity(model, expected, LinearOutput::kDecisionFunction, "decision_function");
  check_parity(model, expected, LinearOutput::kPredict, "predict_index");
  // positive_proba is the second column of predict_proba.
  nlohmann::json positive = expected;
  for (auto& row : positive["predict_proba"]) row = row[1];
  check_parity(model, positive, LinearOutput::kPositiveProba, "predict_proba");
}

TEST_CASE("linear: multinomial logistic regression on wine equals scikit-learn") {
  const auto model = load("wine_logistic");
  const auto expected = read_json(models_dir() / "linear_wine_logistic_expected.json");
  CHECK(model.classes().size() == 3);
  check_parity(model, expected, LinearOutput::kPredictProba, "predict_proba");
  check_parity(model, expected, LinearOutput::kDecisionFunction, "decision_function");
  check_parity(model, expected, LinearOutput::kPredict, "predict_index");
  CHECK_FALSE(model.output_width(LinearOutput::kPositiveProba).ok());  // 3 classes
}

TEST_CASE("linear: LinearRegression and Ridge (one and two targets) equal scikit-learn") {
  for (const char* name : {"cancer_linear", "cancer_ridge", "wine_ridge"}) {
    INFO(name);
    const auto model = load(name);
    CHECK_FALSE(model.is_classifier());
    check_parity(model, read_json(models_dir() / ("linear_" + std::string(name) + "_expected.json")),
                 LinearOutput::kPredict, "predict");
    CHECK_FALSE(model.output_width(LinearOutput::kPredictProba).ok());
  }
  CHECK(*load("cancer_ridge").output_width(LinearOutput::kPredict) == 2);
}

TEST_CASE("linear: string class labels are kept, predict gives their index") {
  const auto model = load("cancer_labels");
  const auto expected = read_json(models_dir() / "linear_cancer_labels_expected.json");
  CHECK(model.classes() == std::vector<std::string>{"benign", "malignant"});
  check_parity(model, expected, LinearOutput::kPredict, "predict_index");
  check_parity(model, expected, LinearOutput::kPredictProba, "predict_proba");
}

TEST_CASE("linear: one-vs-rest probabilities are the normalised sigmoids") {
  auto m = LinearModel::parse(R"({"format":"ember-linear","version":1,"estimator":"LogisticRegression",
    "coef":[[1,0],[0,1],[-1,-1]],"intercept":[0,0.5,0],"classes":["a","b","c"],"multi_class":"ovr"})");
  REQUIRE(m.ok());
  std::vector<double> x{0.5, -1.0};
  std::vector<double> p(3);
  REQUIRE(m->evaluate(x, 1, LinearOutput::kPredictProba, p).ok());
  const auto s = [](double z) { return 1 / (1 + std::exp(-z)); };
  const double a = s(0.5), b = s(-0.5), c = s(0.5), sum = a + b + c;
  CHECK(p[0] == Approx(a / sum).epsilon(1e-12));
  CHECK(p[1] == Approx(b / sum).epsilon(1e-12));
  CHECK(p[2] == Approx(c / sum).epsilon(1e-12));
}

TEST_CASE("linear: wrong sizes are InvalidArgument") {
  const auto model = load("cancer_logistic");
  std::vector<double> x(29);
  std::vector<double> out(1);
  CHECK(model.evaluate(x, 1, LinearOutput::kPositiveProba, out).code() == ember::StatusCode::kInvalidArgument);
  x.resize(30);
  out.resize(2);
  CHECK(model.evaluate(x, 1, LinearOutput::kPositiveProba, out).code() == ember::StatusCode::kInvalidArgument);
}

TEST_CASE("linear: malformed, truncated and hostile files are refused with a clear error") {
  const auto refused = [](const std::string& json, const std::string& says) {
    auto m = LinearModel::parse(json);
    INFO(json);
    REQUIRE_FALSE(m.ok());
    CHECK(m.status().code() == ember::StatusCode::kInvalidArgument);
    CHECK_THAT(m.status().message(), Catch::Contains(says));
  };
  const std::string head = R"({"format":"ember-linear","version":1,)";
  refused("", "not valid JSON");
  refused(R"({"format":"ember-linear","version":1,"estimator":"Ridge","coef":[[1,2]],"inter)", "not valid JSON");
  refused("[1,2]", "not an ember linear model");
  refused(R"({"format": 0, "coef": [[1, 2]]})", "malformed");  // found by fuzz_config
  refused(head + R"("estimator":"LogisticRegression","coef":[[1,2]],"intercept":[0],"classes":[0,1],"multi_class":7})",
          "malformed");
  refused(R"({"format":"ember-linear","version":2})", "version");
  refused(head + R"("estimator":"SVC","coef":[[1]],"intercept":[0]})", "unknown estimator 'SVC'");
  refused(head + R"("estimator":"Ridge","coef":[],"intercept":[0]})", "'coef'");
  refused(head + R"("estimator":"Ridge","coef":[[1,2],[3]],"intercept":[0,0]})", "same number");
  refused(head + R"("estimator":"Ridge","coef":[[1,"x"]],"intercept":[0]})", "'coef'[0][1]");
  refused(head + R"("estimator":"Ridge","coef":[[1e999]],"intercept":[0]})", "not valid JSON");
  refused(head + R"("estimator":"Ridge","coef":[[1,2]],"intercept":[0,1]})", "'intercept'");
  refused(head + R"("estimator":"LogisticRegression","coef":[[1,2]],"intercept":[0],"classes":[0]})", "at least 2 classes");
  refused(head + R"("estimator":"LogisticRegression","coef":[[1,2]],"intercept":[0],"classes":[0,1,2]})", "needs 3 coef rows");
  refused(head + R"("estimator":"LogisticRegression","coef":[[1,2]],"intercept":[0],"classes":[0,1],"multi_class":"x"})",
          "multi_class");
  refused(head + R"("estimator":"LogisticRegression","coef":[[1,2]],"intercept":[0],"classes":[{},1]})", "'classes'");
  std::string deep(100000, '[');
  refused(deep, "not valid JSON");
  auto missing = LinearModel::load("/nonexistent/linear.json");
  CHECK(missing.status().code() == ember::StatusCode::kNotFound);
}
