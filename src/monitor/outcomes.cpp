// Live quality from joined outcomes: accuracy, AUC (Mann-Whitney) and MAE.
#include <algorithm>
#include <cmath>

#include "ember/monitor.hpp"

namespace ember {

OutcomeStats outcome_stats(std::string version, std::span<const std::pair<double, double>> pairs,
                           double positive_threshold) {
  OutcomeStats s;
  s.version = std::move(version);
  s.joined = pairs.size();
  s.window = pairs.size();
  if (pairs.empty()) return s;
  bool binary = true;
  double abs_err = 0, correct = 0;
  for (const auto& [p, y] : pairs) {
    abs_err += std::fabs(p - y);
    binary = binary && (y == 0 || y == 1);
    correct += ((p >= positive_threshold) == (y == 1)) ? 1 : 0;
  }
  const double n = static_cast<double>(pairs.size());
  s.mae = abs_err / n;
  if (!binary) return s;
  s.accuracy = correct / n;
  // AUC: the Mann-Whitney U statistic, tied scores counted half.
  std::vector<std::pair<double, double>> sorted(pairs.begin(), pairs.end());
  std::sort(sorted.begin(), sorted.end());
  double pos = 0, neg = 0, rank_sum = 0;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j < sorted.size() && sorted[j].first == sorted[i].first) ++j;
    const double avg_rank = (static_cast<double>(i) + static_cast<double>(j) + 1) / 2;
    for (std::size_t k = i; k < j; ++k) {
      if (sorted[k].second == 1) {
        rank_sum += avg_rank;
        ++pos;
      } else {
        ++neg;
      }
    }
    i = j;
  }
  if (pos > 0 && neg > 0) s.auc = (rank_sum - pos * (pos + 1) / 2) / (pos * neg);
  return s;
}

}  // namespace ember
