// Schema compatibility: what a new schema refuses or reads differently among the records
// an old one accepts, compared feature by feature on the compiled schemas.
#include <algorithm>
#include <string>
#include <vector>

#include "ember/schema.hpp"

namespace ember {

namespace {

// Every value of `from` is a value of `to`: the same kind, or a wider one.
bool widens(FeatureKind from, FeatureKind to) {
  return from == to || (from == FeatureKind::kInteger && to == FeatureKind::kNumber) ||
         (from == FeatureKind::kCategory && to == FeatureKind::kText);
}

// kReject refuses what kCoerce converts; kCoerce refuses what kFlag accepts.
int leniency(FieldPolicy p) {
  switch (p) {
    case FieldPolicy::kReject: return 0;
    case FieldPolicy::kCoerce: return 1;
    case FieldPolicy::kFlag: return 2;
  }
  return 0;
}

std::string_view policy_name(FieldPolicy p) {
  switch (p) {
    case FieldPolicy::kReject: return "reject";
    case FieldPolicy::kCoerce: return "coerce";
    case FieldPolicy::kFlag: return "flag";
  }
  return "?";
}

std::string in_quotes(std::string_view name) { return "'" + std::string(name) + "'"; }

}  // namespace

std::vector<std::string> breaking_changes(const Schema& from, const Schema& to) {
  std::vector<std::string> changes;
  for (const FeatureSpec& old : from.features()) {
    const std::int64_t i = to.feature_index(old.name);
    if (i < 0) {
      changes.push_back("feature " + in_quotes(old.name) + " is gone");
      continue;
    }
    const FeatureSpec& now = to.features()[static_cast<std::size_t>(i)];
    if (now.required && !old.required) {
      changes.push_back("feature " + in_quotes(old.name) + " is required now");
    }
    if (!widens(old.kind, now.kind)) {
      changes.push_back("feature " + in_quotes(old.name) + " was " + std::string(feature_kind_name(old.kind)) +
                        " and is " + std::string(feature_kind_name(now.kind)) + " now");
    } else if (old.kind == FeatureKind::kCategory && now.kind == FeatureKind::kCategory) {
      for (const std::string& c : old.categories) {
        if (std::find(now.categories.begin(), now.categories.end(), c) == now.categories.end()) {
          changes.push_back("feature " + in_quotes(old.name) + " no longer accepts the category " + in_quotes(c));
        }
      }
    }
    if (leniency(now.policy) < leniency(old.policy)) {
      changes.push_back("feature " + in_quotes(old.name) + "'s field policy went from " +
                        std::string(policy_name(old.policy)) + " to " + std::string(policy_name(now.policy)));
    }
  }
  for (const FeatureSpec& added : to.features()) {
    if (added.required && from.feature_index(added.name) < 0) {
      changes.push_back("feature " + in_quotes(added.name) + " is new and required");
    }
  }
  return changes;
}

}  // namespace ember
