#pragma once

// What the "ember registry" commands share.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ember/registry.hpp"

namespace ember_cli {

/// Options every registry command takes.
struct Common {
  std::string registry;
  std::string key_file;
  std::string actor;
  bool json = false;
  bool progress = false;
};

/// Adds --registry (EMBER_REGISTRY), --key-file (EMBER_REGISTRY_KEY_FILE), --actor,
/// --progress and, when `with_json`, --json to `cmd`.
void add_common(CLI::App* cmd, const std::shared_ptr<Common>& c, bool with_json);
ember::Result<std::unique_ptr<ember::Registry>> open_registry(const Common& c);
void print(const nlohmann::json& j);
nlohmann::json version_json(const ember::VersionInfo& v);
nlohmann::json event_json(const ember::AliasEvent& e);
/// NAME@ALIAS, split; InvalidArgument otherwise.
ember::Result<std::pair<std::string, std::string>> alias_ref(const std::string& text);
/// A positive integer, or -1.
std::int64_t parse_version(const std::string& text);

/// alias, rollback, history, approve, archive, delete, sign, tag, policy.
void add_registry_alias_commands(CLI::App* reg, std::function<int()>& run);
/// ember rollout start, status, pause, resume, abort, promote.
void add_rollout_registry_commands(CLI::App* rollout, std::function<int()>& run);

}  // namespace ember_cli
