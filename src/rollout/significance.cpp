// A/B statistics: the two-proportion z-test, Welch's t-test, sample sizes, and the
// distributions they need (normal quantile, Student's t tail).
#include <cmath>
#include <limits>

#include "ember/rollout.hpp"

namespace ember {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The regularised incomplete beta I_x(a, b) by its continued fraction (Lentz), on the
// side where it converges fast.
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1.0 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return h;
}

double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1.0 - front * beta_fraction(b, a, 1 - x) / b;
}

// t with P(T > t) = p, by bisection (p in (0, 0.5]).
double student_t_upper_quantile(double p, double dof) {
  double lo = 0, hi = 1;
  while (student_t_sf(hi, dof) > p && hi < 1e12) hi *= 2;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (student_t_sf(mid, dof) > p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

Status check_alpha(double alpha) {
  if (!(alpha > 0 && alpha < 1)) return invalid_argument("alpha must be in (0, 1)");
  return {};
}

}  // namespace

double normal_quantile(double p) {
  if (!(p > 0 && p < 1)) {
    if (p == 0) return -std::numeric_limits<double>::infinity();
    if (p == 1) return std::numeric_limits<double>::infinity();
    return kNaN;
  }
  // Acklam's rational approximation, then one Halley step on erfc.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - 0.02425) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  for (int i = 0; i < 2; ++i) {
    const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
    const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
    x -= u / (1 + x * u / 2);
  }
  return x;
}

double student_t_sf(double t, double dof) {
  if (!(dof > 0) || std::isnan(t)) return kNaN;
  if (std::isinf(t)) return t > 0 ? 0.0 : 1.0;
  const double tail = 0.5 * incomplete_beta(dof / 2, 0.5, dof / (dof + t * t));
  return t >= 0 ? tail : 1.0 - tail;
}

MeanSample describe_sample(std::span<const double> values) {
  MeanSample s;
  s.n = values.size();
  if (values.empty()) return s;
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  double ss = 0;
  for (double v : values) ss += (v - s.mean) * (v - s.mean);
  s.variance = values.size() > 1 ? ss / static_cast<double>(values.size() - 1) : 0.0;
  return s;
}

Result<SignificanceResult> proportions_z_test(const ProportionSample& control, const ProportionSample& treatment,
                                              double alpha) {
  if (auto st = check_alpha(alpha); !st.ok()) return st;
  if (control.trials == 0 || treatment.trials == 0) return invalid_argument("z-test: an arm has no trials");
  if (control.successes > control.trials || treatment.successes > treatment.trials) {
    return invalid_argument("z-test: more successes than trials");
  }
  const double n1 = static_cast<double>(control.trials), n2 = static_cast<double>(treatment.trials);
  const double p1 = static_cast<double>(control.successes) / n1, p2 = static_cast<double>(treatment.successes) / n2;
  const double pooled = (static_cast<double>(control.successes) + static_cast<double>(treatment.successes)) / (n1 + n2);
  const double se = std::sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  SignificanceResult r;
  r.effect = p2 - p1;
  r.statistic = se > 0 ? r.effect / se : 0.0;
  r.p_value = se > 0 ? std::erfc(std::fabs(r.statistic) / std::sqrt(2.0)) : 1.0;
  const double wald = std::sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2);
  const double z = normal_quantile(1 - alpha / 2);
  r.ci_low = r.effect - z * wald;
  r.ci_high = r.effect + z * wald;
  r.significant = r.p_value < alpha;
  return r;
}

Result<SignificanceResult> welch_t_test(const MeanSample& control, const MeanSample& treatment, double alpha) {
  if (auto st = check_alpha(alpha); !st.ok()) return st;
  if (control.n < 2 || treatment.n < 2) return invalid_argument("Welch's t-test: an arm has fewer than 2 values");
  if (!(control.variance >= 0) || !(treatment.variance >= 0)) return invalid_argument("Welch's t-test: a negative variance");
  const double v1 = control.variance / static_cast<double>(control.n), v2 = treatment.variance / static_cast<double>(treatment.n);
  const double se2 = v1 + v2;
  if (!(se2 > 0)) return invalid_argument("Welch's t-test: neither arm varies");
  SignificanceResult r;
  r.effect = treatment.mean - control.mean;
  r.statistic = r.effect / std::sqrt(se2);
  r.dof = se2 * se2 / (v1 * v1 / static_cast<double>(control.n - 1) + v2 * v2 / static_cast<double>(treatment.n - 1));
  r.p_value = std::min(1.0, 2 * student_t_sf(std::fabs(r.statistic), r.dof));
  const double t = student_t_upper_quantile(alpha / 2, r.dof);
  r.ci_low = r.effect - t * std::sqrt(se2);
  r.ci_high = r.effect + t * std::sqrt(se2);
  r.significant = r.p_value < alpha;
  return r;
}

Result<std::uint64_t> sample_size_proportions(double baseline, double effect, double alpha, double power) {
  if (auto st = check_alpha(alpha); !st.ok()) return st;
  if (!(power > 0 && power < 1)) return invalid_argument("power must be in (0, 1)");
  const double p1 = baseline, p2 = baseline + effect;
  if (!(p1 > 0 && p1 < 1 && p2 > 0 && p2 < 1) || effect == 0) {
    return invalid_argument("sample size: baseline and baseline + effect must be rates in (0, 1), and differ");
  }
  const double za = normal_quantile(1 - alpha / 2), zb = normal_quantile(power);
  const double pbar = (p1 + p2) / 2;
  const double n = std::pow(za * std::sqrt(2 * pbar * (1 - pbar)) + zb * std::sqrt(p1 * (1 - p1) + p2 * (1 - p2)), 2) /
                   (effect * effect);
  return static_cast<std::uint64_t>(std::ceil(n - 1e-9));
}

Result<std::uint64_t> sample_size_means(double stddev, double effect, double alpha, double power) {
  if (auto st = check_alpha(alpha); !st.ok()) return st;
  if (!(power > 0 && power < 1)) return invalid_argument("power must be in (0, 1)");
  if (!(stddev > 0) || !std::isfinite(stddev) || effect == 0 || !std::isfinite(effect)) {
    return invalid_argument("sample size: stddev must be positive and the effect non-zero");
  }
  const double za = normal_quantile(1 - alpha / 2), zb = normal_quantile(power);
  const double n = 2 * std::pow((za + zb) * stddev / effect, 2);
  return static_cast<std::uint64_t>(std::ceil(n - 1e-9));
}

}  // namespace ember
