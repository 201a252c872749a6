#pragma once

// Helpers shared by the command groups of the ember tool.

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "ember/bundle.hpp"
#include "ember/drift.hpp"
#include "ember/log.hpp"
#include "ember/model.hpp"
#include "ember/registry.hpp"
#include "ember/status.hpp"

namespace ember_cli {

/// Prints "ember: error: ..." on stderr; returns exit status 1.
int fail(const ember::Status& status);

/// A progress bar on stderr for long hashing or copying, drawn only when stderr is a
/// terminal (or when forced) and the work is at least 16 MiB.
ember::Progress progress_bar(std::string label, bool force = false);

/// "2026-12-03T08:00:00.123456Z".
std::string format_time_us(std::int64_t us);
/// RFC 3339 ("2026-12-03T08:00:00Z", fractional seconds and offsets allowed) or Unix
/// seconds; InvalidArgument otherwise.
ember::Result<std::int64_t> parse_time_us(const std::string& text);

/// The 64 hex digits on the first line of a key file (a registry's key, an Ed25519
/// secret or public key). NotFound when it cannot be read, InvalidArgument when it
/// holds something else; an empty path gives an empty key.
ember::Result<std::string> read_key_file(const std::string& path);
/// The Ed25519 key pair whose secret is in the key file `path`.
ember::Result<ember::SigningKey> read_signing_key(const std::string& path);

/// A log sink printing to stderr when `verbose`, else none.
ember::LogSink stderr_sink(bool verbose);
/// `path` opened for reading ("-": standard input); NotFound when it cannot be.
ember::Result<std::istream*> open_input(const std::string& path, std::ifstream& file);

/// Writes `text` to `path` through a temporary file beside it, renamed into place: a
/// reader never sees half a file. InvalidArgument naming the file when it cannot.
ember::Status write_file_atomically(const std::string& path, std::string_view text);

/// Adds fault rules given as STAGE=FAULT (ember predict --inject's form) to
/// `options.inject`; InvalidArgument naming `option` for a malformed one.
ember::Status add_fault_rules(const std::vector<std::string>& specs, std::string_view option, ember::ModelOptions& options);

/// Who is acting: --actor, else $EMBER_ACTOR, else $USER, else "unknown".
std::string actor_or_default(const std::string& actor);

/// Registers "ember bundle ..." and "ember registry ..."; `run` is set to the chosen
/// command's body after parsing.
void add_bundle_commands(CLI::App& app, std::function<int()>& run);
void add_registry_commands(CLI::App& app, std::function<int()>& run);
/// Registers "ember serve-bench".
void add_serve_commands(CLI::App& app, std::function<int()>& run);
/// Registers "ember reference" and "ember drift".
void add_drift_commands(CLI::App& app, std::function<int()>& run);

/// What drift and report commands compare: reference statistics (from reference data,
/// or a bundle's reference.json) and the current data, read through the schema (given,
/// or the bundle's).
struct DriftInputs {
  ember::ReferenceStats reference;
  ember::Table current;
};
/// A pool for comparing columns on every core (null on one core).
std::shared_ptr<ember::ThreadPool> drift_pool();
ember::Result<DriftInputs> load_drift_inputs(const std::string& schema, const std::string& bundle,
                                             const std::string& reference, const std::string& current);

/// Registers "ember rollout ...".
void add_rollout_commands(CLI::App& app, std::function<int()>& run);

/// Registers "ember report".
void add_report_command(CLI::App& app, std::function<int()>& run);

/// Registers "ember predict".
void add_predict_command(CLI::App& app, std::function<int()>& run);

/// Registers "ember score".
void add_score_command(CLI::App& app, std::function<int()>& run);

/// A model directory or bundle, or a reference (NAME@ALIAS, NAME/VERSION) into the
/// registry at `registry_dir` (opened into `registry` on first use, with the key in
/// `key_file`). NotFound naming --registry when `what` is not a directory and none is given.
ember::Result<std::unique_ptr<ember::Model>> load_model_or_ref(const std::string& what, const std::string& registry_dir,
                                                               const std::string& key_file,
                                                               std::shared_ptr<ember::Registry>& registry,
                                                               const ember::ModelOptions& options);

}  // namespace ember_cli
