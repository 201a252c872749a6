// linear.json: a fitted LinearRegression, Ridge or LogisticRegression, evaluated with Eigen.
#include "ember/linear.hpp"

#include <cmath>
#include <utility>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "core/files.hpp"

namespace ember {
namespace detail {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct LinearImpl {
  std::string estimator;
  bool classifier = false;
  bool multinomial = false;  // softmax over classes; else one-vs-rest (or binary)
  RowMatrix coef;            // scores x inputs
  Eigen::VectorXd intercept; // scores
  std::vector<std::string> classes;

  [[nodiscard]] std::size_t scores() const { return static_cast<std::size_t>(coef.rows()); }
};

namespace {

using Json = nlohmann::json;
constexpr int kFormatVersion = 1;

Result<std::vector<double>> numbers(const Json& doc, const char* key, std::size_t max) {
  if (!doc.contains(key) || !doc.at(key).is_array()) return invalid_argument(std::string("'") + key + "' must be an array");
  const Json& a = doc.at(key);
  if (a.empty() || a.size() > max) {
    return invalid_argument(std::string("'") + key + "' must hold 1 to " + std::to_string(max) + " numbers");
  }
  std::vector<double> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a[i].is_number()) return invalid_argument(std::string("'") + key + "'[" + std::to_string(i) + "] is not a number");
    const double v = a[i].get<double>();
    if (!std::isfinite(v)) return invalid_argument(std::string("'") + key + "'[" + std::to_string(i) + "] is not finite");
    out.push_back(v);
  }
  return out;
}

constexpr std::size_t kMaxWidth = std::size_t{1} << 20;

Result<std::shared_ptr<LinearImpl>> build(const Json& doc) {
  if (!doc.is_object() || doc.value("format", "") != "ember-linear") {
    return invalid_argument("not an ember linear model (\"format\" must be \"ember-linear\")");
  }
  if (!doc.contains("version") || !doc.at("version").is_number_integer() || doc.at("version").get<int>() != kFormatVersion) {
    return invalid_argument("unsupported format version (this ember reads version " + std::to_string(kFormatVersion) + ")");
  }
  auto impl = std::make_shared<LinearImpl>();
  if (!doc.contains("estimator") || !doc.at("estimator").is_string()) return invalid_argument("'estimator' must be a string");
  impl->estimator = doc.at("estimator").get<std::string>();
  if (impl->estimator == "LogisticRegression") {
    impl->classifier = true;
  } else if (impl->estimator != "LinearRegression" && impl->estimator != "Ridge") {
    return invalid_argument("unknown estimator '" + impl->estimator +
                            "' (LinearRegression, Ridge and LogisticRegression are supported)");
  }
  if (!doc.contains("coef") || !doc.at("coef").is_array() || doc.at("coef").empty()) {
    return invalid_argument("'coef' must be a non-empty array of rows");
  }
  const Json& rows = doc.at("coef");
  if (rows.size() > 100000) return invalid_argument("'coef' has too many rows");
  std::size_t width = 0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (!rows[r].is_array()) return invalid_argument("'coef'[" + std::to_string(r) + "] must be an array");
    if (r == 0) width = rows[r].size();
    if (rows[r].size() != width || width == 0 || width > kMaxWidth) {
      return invalid_argument("'coef' rows must all hold the same number (1 to " + std::to_string(kMaxWidth) +
                              ") of coefficients; row " + std::to_string(r) + " holds " + std::to_string(rows[r].size()));
    }
  }
  impl->coef.resize(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(width));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < width; ++c) {
      const Json& v = rows[r][c];
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        return invalid_argument("'coef'[" + std::to_string(r) + "][" + std::to_string(c) + "] is not a finite number");
      }
      impl->coef(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = v.get<double>();
    }
  }
  auto intercept = numbers(doc, "intercept", rows.size());
  if (!intercept.ok()) return intercept.status();
  if (intercept->size() != rows.size()) {
    return invalid_argument("'intercept' holds " + std::to_string(intercept->size()) + " values but 'coef' has " +
                            std::to_string(rows.size()) + " rows");
  }
  impl->intercept = Eigen::Map<const Eigen::VectorXd>(intercept->data(), static_cast<Eigen::Index>(intercept->size()));
  if (!impl->classifier) return impl;

  if (!doc.contains("classes") || !doc.at("classes").is_array()) return invalid_argument("'classes' must be an array");
  for (const Json& c : doc.at("classes")) {
    if (c.is_string()) {
      impl->classes.push_back(c.get<std::string>());
    } else if (c.is_number() || c.is_boolean()) {
      impl->classes.push_back(c.dump());
    } else {
      return invalid_argument("'classes' must hold strings, numbers or booleans");
    }
  }
  const std::size_t k = impl->classes.size();
  if (k < 2) return invalid_argument("a classifier needs at least 2 classes, got " + std::to_string(k));
  const std::string multi = doc.value("multi_class", "multinomial");
  if (multi != "multinomial" && multi != "ovr") return invalid_argument("'multi_class' must be \"multinomial\" or \"ovr\"");
  impl->multinomial = multi == "multinomial";
  const std::size_t want = k == 2 ? 1 : k;
  if (rows.size() != want) {
    return invalid_argument("a classifier with " + std::to_string(k) + " classes needs " + std::to_string(want) +
                            " coef rows, got " + std::to_string(rows.size()));
  }
  return impl;
}

}  // namespace
}  // namespace detail

std::string_view linear_output_name(LinearOutput output) noexcept {
  switch (output) {
    case LinearOutput::kPredict: return "predict";
    case LinearOutput::kPredictProba: return "predict_proba";
    case LinearOutput::kDecisionFunction: return "decision_function";
    case LinearOutput::kPositiveProba: return "positive_proba";
  }
  return "unknown";
}

Result<LinearOutput> parse_linear_output(std::string_view name) {
  for (auto o : {LinearOutput::kPredict, LinearOutput::kPredictProba, LinearOutput::kDecisionFunction,
                 LinearOutput::kPositiveProba}) {
    if (linear_output_name(o) == name) return o;
  }
  return invalid_argument("unknown linear output '" + std::string(name) +
                          "' (predict, predict_proba, decision_function or positive_proba)");
}

LinearModel::LinearModel(std::shared_ptr<const detail::LinearImpl> impl) : impl_(std::move(impl)) {}

Result<LinearModel> LinearModel::parse(std::string_view json) try {
  detail::Json doc;
  try {
    doc = detail::Json::parse(json.begin(), json.end());
  } catch (const std::exception&) {
    return invalid_argument("linear model: not valid JSON");
  }
  auto impl = detail::build(doc);
  if (!impl.ok()) return impl.status().with_context("linear model");
  return LinearModel(std::move(impl).value());
} catch (const std::exception& e) {
  // nlohmann throws on a value of an unexpected type that a check above missed: it must
  // never leave as an exception.
  return invalid_argument(std::string("linear model: malformed: ") + e.what());
}

Result<LinearModel> LinearModel::load(const std::filesystem::path& path) {
  auto text = detail::read_text_file(path, "linear model file");
  if (!text.ok()) return text.status();
  auto model = parse(*text);
  if (!model.ok()) return model.status().with_context("'" + path.string() + "'");
  return model;
}

bool LinearModel::is_classifier() const noexcept { return impl_->classifier; }
const std::string& LinearModel::estimator() const noexcept { return impl_->estimator; }
std::size_t LinearModel::input_width() const noexcept { return static_cast<std::size_t>(impl_->coef.cols()); }
const std::vector<std::string>& LinearModel::classes() const noexcept { return impl_->classes; }

Result<std::size_t> LinearModel::output_width(LinearOutput output) const {
  const auto& m = *impl_;
  switch (output) {
    case LinearOutput::kPredict: return m.classifier ? std::size_t{1} : m.scores();
    case LinearOutput::kDecisionFunction:
      if (m.classifier) return m.scores();
      break;
    case LinearOutput::kPredictProba:
      if (m.classifier) return m.classes.size();
      break;
    case LinearOutput::kPositiveProba:
      if (m.classifier && m.classes.size() == 2) return std::size_t{1};
      break;
  }
  return invalid_argument(std::string("a ") + (m.classifier ? std::to_string(m.classes.size()) + "-class " : "") +
                          m.estimator + " has no output '" + std::string(linear_output_name(output)) + "'");
}

Status LinearModel::evaluate(std::span<const double> x, std::size_t rows, LinearOutput output,
                             std::span<double> out) const {
  auto width = output_width(output);
  if (!width.ok()) return width.status();
  const auto& m = *impl_;
  const std::size_t d = input_width();
  if (x.size() != rows * d) {
    return invalid_argument("linear model: expected " + std::to_string(rows) + " x " + std::to_string(d) +
                            " inputs, got " + std::to_string(x.size()) + " values");
  }
  if (out.size() != rows * *width) {
    return invalid_argument("linear model: the output needs " + std::to_string(rows * *width) + " values, got " +
                            std::to_string(out.size()));
  }
  const auto n = static_cast<Eigen::Index>(rows);
  const auto s = static_cast<Eigen::Index>(m.scores());
  const Eigen::Map<const detail::RowMatrix> xd(x.data(), n, static_cast<Eigen::Index>(d));
  // Scores in double, as scikit-learn computes them: X @ coef.T + intercept.
  // A buffer of the thread's own: resized only when a batch of another size comes.
  thread_local detail::RowMatrix z;
  z.resize(n, s);
  z.noalias() = xd * m.coef.transpose();
  z.rowwise() += m.intercept.transpose();
  Eigen::Map<detail::RowMatrix> o(out.data(), n, static_cast<Eigen::Index>(*width));
  const auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };

  if (!m.classifier) {
    o = z;
    return {};
  }
  if (output == LinearOutput::kDecisionFunction) {
    o = z;
    return {};
  }
  if (output == LinearOutput::kPredict) {
    for (Eigen::Index r = 0; r < n; ++r) {
      if (s == 1) {
        o(r, 0) = z(r, 0) > 0 ? 1.0 : 0.0;
      } else {
        Eigen::Index best = 0;
        z.row(r).maxCoeff(&best);
        o(r, 0) = static_cast<double>(best);
      }
    }
    return {};
  }
  if (s == 1) {  // binary
    for (Eigen::Index r = 0; r < n; ++r) {
      const double p = sigmoid(z(r, 0));
      if (output == LinearOutput::kPositiveProba) {
        o(r, 0) = p;
      } else {
        o(r, 0) = 1.0 - p;
        o(r, 1) = p;
      }
    }
    return {};
  }
  for (Eigen::Index r = 0; r < n; ++r) {
    // In place in z's row: no temporary per row.
    if (m.multinomial) {  // softmax, shifted by the row's maximum for stability
      const double top = z.row(r).maxCoeff();
      z.row(r) = (z.row(r).array() - top).exp().matrix();
    } else {  // one-vs-rest: each class's sigmoid, normalised
      z.row(r) = z.row(r).unaryExpr(sigmoid);  // elementwise: safe in place
    }
    o.row(r) = z.row(r) / z.row(r).sum();
  }
  return {};
}

}  // namespace ember
