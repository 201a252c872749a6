// The statistical tests behind drift: two-sample Kolmogorov-Smirnov with scipy's exact
// distribution, chi-square, Wasserstein-1 and Jensen-Shannon.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "ember/drift.hpp"

namespace ember {

namespace {

// P(D >= d) for two samples of sizes n1, n2 under the null hypothesis, where
// d = h * gcd / (n1 * n2): the share of monotone lattice paths from (0, 0) to (n1, n2)
// that touch a point with |i * n2 - j * n1| >= h * gcd. f(i, j), the share of paths to
// (i, j) that touched one, obeys f(i, j) = i/(i+j) f(i-1, j) + j/(i+j) f(i, j-1): every
// value stays in [0, 1], so neither counts nor binomials overflow, and small p-values
// keep their relative precision (no 1 - x).
double ks_exact_outside(std::int64_t n1, std::int64_t n2, std::int64_t bound) {
  std::vector<double> row(static_cast<std::size_t>(n2) + 1);
  const auto outside = [&](std::int64_t i, std::int64_t j) { return std::llabs(i * n2 - j * n1) >= bound; };
  row[0] = 0;  // (0, 0) is inside for any d > 0
  for (std::int64_t j = 1; j <= n2; ++j) row[j] = outside(0, j) ? 1.0 : row[j - 1];
  for (std::int64_t i = 1; i <= n1; ++i) {
    row[0] = outside(i, 0) ? 1.0 : row[0];
    for (std::int64_t j = 1; j <= n2; ++j) {
      if (outside(i, j)) {
        row[j] = 1.0;
      } else {
        const double s = static_cast<double>(i + j);
        row[j] = (static_cast<double>(i) * row[j] + static_cast<double>(j) * row[j - 1]) / s;
      }
    }
  }
  return row[n2];
}

// Marsaglia, Tsang and Wang (2003): P(D_n < d) for the one-sample statistic, exactly,
// by the n-th power of a (2k-1)-square matrix, with the exponent kept apart.
struct Scaled {
  std::vector<double> m;
  int exp10 = 0;
};

void mat_mul(const std::vector<double>& a, const std::vector<double>& b, std::vector<double>& out, int m) {
  std::fill(out.begin(), out.end(), 0.0);
  for (int i = 0; i < m; ++i) {
    for (int k = 0; k < m; ++k) {
      const double aik = a[i * m + k];
      if (aik == 0) continue;
      for (int j = 0; j < m; ++j) out[i * m + j] += aik * b[k * m + j];
    }
  }
}

void mat_pow(const std::vector<double>& base, int m, std::int64_t n, Scaled& out) {
  if (n == 1) {
    out.m = base;
    out.exp10 = 0;
    return;
  }
  mat_pow(base, m, n / 2, out);
  std::vector<double> tmp(out.m.size());
  mat_mul(out.m, out.m, tmp, m);
  int e = 2 * out.exp10;
  if (n % 2 == 1) {
    std::vector<double> tmp2(out.m.size());
    mat_mul(base, tmp, tmp2, m);
    tmp.swap(tmp2);
  }
  if (tmp[(m / 2) * m + m / 2] > 1e140) {
    for (double& v : tmp) v *= 1e-140;
    e += 140;
  }
  out.m.swap(tmp);
  out.exp10 = e;
}

// The limiting distribution's upper tail (Kolmogorov), with Stephens' correction.
double kolmogorov_sf_asymptotic(double n, double d) {
  const double sn = std::sqrt(n);
  const double lambda = (sn + 0.12 + 0.11 / sn) * d;
  if (lambda < 0.2) return 1.0;
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    const double term = std::exp(-2.0 * k * k * lambda * lambda);
    sum += (k % 2 == 1 ? 2.0 : -2.0) * term;
    if (term < 1e-300) break;
  }
  return std::clamp(sum, 0.0, 1.0);
}

// kstwo.sf(d, n): exact by Marsaglia-Tsang-Wang while the matrix stays small, else the
// corrected limit (reached only where the p-value is already below ~1e-3).
double kolmogorov_sf(std::int64_t n, double d) {
  if (d <= 0) return 1.0;
  if (d >= 1) return 0.0;
  const double nd = static_cast<double>(n) * d;
  const int k = static_cast<int>(nd) + 1;
  const int m = 2 * k - 1;
  if (m > 129) return kolmogorov_sf_asymptotic(static_cast<double>(n), d);
  const double h = k - nd;
  std::vector<double> H(static_cast<std::size_t>(m) * m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) H[i * m + j] = (i - j + 1 < 0) ? 0.0 : 1.0;
  }
  for (int i = 0; i < m; ++i) {
    H[i * m] -= std::pow(h, i + 1);
    H[(m - 1) * m + i] -= std::pow(h, m - i);
  }
  if (2 * h - 1 > 0) H[(m - 1) * m] += std::pow(2 * h - 1, m);
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < m; ++j) {
      if (i - j + 1 > 0) {
        for (int g = 1; g <= i - j + 1; ++g) H[i * m + j] /= g;
      }
    }
  }
  Scaled q;
  mat_pow(H, m, n, q);
  double s = q.m[(k - 1) * m + (k - 1)];
  int e = q.exp10;
  for (std::int64_t i = 1; i <= n; ++i) {
    s = s * static_cast<double>(i) / static_cast<double>(n);
    if (s < 1e-140) {
      s *= 1e140;
      e -= 140;
    }
  }
  const double cdf = s * std::pow(10.0, e);
  return std::clamp(1.0 - cdf, 0.0, 1.0);
}

// Regularised lower incomplete gamma P(a, x) by its series (x < a + 1).
double gamma_p_series(double a, double x) {
  double sum = 1.0 / a, term = sum;
  for (int n = 1; n < 10000; ++n) {
    term *= x / (a + n);
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * 1e-16) break;
  }
  return sum * std::exp(-x + a * std::log(x) - std::lgamma(a));
}

// Regularised upper incomplete gamma Q(a, x) by its continued fraction (x >= a + 1).
double gamma_q_fraction(double a, double x) {
  constexpr double kTiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / kTiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < 1e-16) break;
  }
  return std::exp(-x + a * std::log(x) - std::lgamma(a)) * h;
}

}  // namespace

TestResult ks_2samp(std::span<const double> a, std::span<const double> b) {
  TestResult out;
  const auto n1 = static_cast<std::int64_t>(a.size());
  const auto n2 = static_cast<std::int64_t>(b.size());
  if (n1 == 0 || n2 == 0) {
    out.p_value = std::numeric_limits<double>::quiet_NaN();
    return out;
  }
  // D over the merged values: both empirical CDFs after each distinct value.
  double d = 0;
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    const double x = (j >= b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    d = std::max(d, std::fabs(static_cast<double>(i) / n1 - static_cast<double>(j) / n2));
  }
  if (std::max(n1, n2) <= 10000) {
    const std::int64_t g = std::gcd(n1, n2);
    const std::int64_t lcm = (n1 / g) * n2;
    const auto h = static_cast<std::int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    out.statistic = static_cast<double>(h) / static_cast<double>(lcm);
    out.p_value = h == 0 ? 1.0 : std::clamp(ks_exact_outside(n1, n2, h * g), 0.0, 1.0);
    return out;
  }
  out.statistic = d;
  const double m = static_cast<double>(std::max(n1, n2)), n = static_cast<double>(std::min(n1, n2));
  out.p_value = kolmogorov_sf(static_cast<std::int64_t>(std::nearbyint(m * n / (m + n))), d);
  return out;
}

double chi_square_sf(double x, double dof) {
  if (!(dof > 0) || std::isnan(x)) return std::numeric_limits<double>::quiet_NaN();
  if (x <= 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  const double a = dof / 2, hx = x / 2;
  return hx < a + 1 ? std::clamp(1.0 - gamma_p_series(a, hx), 0.0, 1.0) : std::clamp(gamma_q_fraction(a, hx), 0.0, 1.0);
}

TestResult chi_square(std::span<const double> observed, std::span<const double> expected) {
  TestResult out;
  double stat = 0;
  for (std::size_t i = 0; i < observed.size() && i < expected.size(); ++i) {
    const double diff = observed[i] - expected[i];
    if (expected[i] == 0) {
      stat += diff == 0 ? 0.0 : std::numeric_limits<double>::infinity();
    } else {
      stat += diff * diff / expected[i];
    }
  }
  out.statistic = stat;
  out.p_value = chi_square_sf(stat, static_cast<double>(observed.size()) - 1);
  return out;
}

double wasserstein_1(std::span<const double> a, std::span<const double> b) {
  if (a.empty() || b.empty()) return std::numeric_limits<double>::quiet_NaN();
  // Integrate |F_a - F_b| between consecutive merged values.
  double total = 0;
  std::size_t i = 0, j = 0;
  double prev = std::min(a[0], b[0]);
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  while (i < a.size() || j < b.size()) {
    const double x = (j >= b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
    total += std::fabs(static_cast<double>(i) / na - static_cast<double>(j) / nb) * (x - prev);
    while (i < a.size() && a[i] <= x) ++i;
    while (j < b.size() && b[j] <= x) ++j;
    prev = x;
  }
  return total;
}

double jensen_shannon(std::span<const double> p, std::span<const double> q) {
  const double sp = std::accumulate(p.begin(), p.end(), 0.0), sq = std::accumulate(q.begin(), q.end(), 0.0);
  if (!(sp > 0) || !(sq > 0)) return std::numeric_limits<double>::quiet_NaN();
  double js = 0;
  for (std::size_t i = 0; i < p.size() && i < q.size(); ++i) {
    const double pi = p[i] / sp, qi = q[i] / sq, m = (pi + qi) / 2;
    if (pi > 0) js += pi * std::log(pi / m);
    if (qi > 0) js += qi * std::log(qi / m);
  }
  return std::sqrt(std::max(js / 2, 0.0));
}

}  // namespace ember
