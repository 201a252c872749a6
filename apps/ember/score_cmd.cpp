// ember score: a data set through a model, chunk by chunk on every core: predictions
// with the input's key columns, rejected records with their errors, a progress bar,
// and a checkpoint after every chunk so that an interrupted run can be resumed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli_common.hpp"
#include "ember/ember.hpp"
#include "score_io.hpp"

namespace ember_cli {

namespace {

using ember::Result;
using ember::Status;
using score::Chunk;

struct ScoreArgs {
  std::string model;
  std::string registry;
  std::string registry_key_file;
  std::string input;
  std::string output;
  std::string rejects;
  std::vector<std::string> keys;
  std::size_t chunk_rows = 10000;
  std::size_t block_rows = 256;
  int threads = 0;
  bool resume = false;
  bool progress = false;
  bool no_progress = false;
  bool served_by = false;
  bool json = false;
  std::size_t max_record_bytes = std::size_t{1} << 20;
};

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// EMBER_SCORE_FAULT, for drills and tests: "stop@N" acts as if SIGINT arrived once N
// chunks are complete; "kill@N" kills the process (SIGKILL) after it has written chunk
// N's predictions and before their checkpoint, the worst moment to die.
struct Fault {
  enum class Kind { kNone, kStop, kKill } kind = Kind::kNone;
  std::size_t after = 0;
};
Result<Fault> fault_from_env() {
  const char* v = std::getenv("EMBER_SCORE_FAULT");
  Fault f;
  if (v == nullptr || *v == '\0') return f;
  const std::string text(v);
  const auto at = text.find('@');
  const std::string kind = text.substr(0, at);
  char* end = nullptr;
  const unsigned long long n = at == std::string::npos ? 0 : std::strtoull(text.c_str() + at + 1, &end, 10);
  if (at == std::string::npos || (kind != "stop" && kind != "kill") || end == nullptr || *end != '\0' || n == 0) {
    return ember::invalid_argument("EMBER_SCORE_FAULT='" + text + "': expected stop@N or kill@N (N >= 1)");
  }
  f.kind = kind == "stop" ? Fault::Kind::kStop : Fault::Kind::kKill;
  f.after = static_cast<std::size_t>(n);
  return f;
}

// What a checkpoint must match for a run to resume from it.
nlohmann::ordered_json run_identity(const ScoreArgs& a, const ember::Model& model, const std::string& rejects) {
  std::error_code ec;
  const auto input = std::filesystem::absolute(a.input).lexically_normal();
  const auto size = std::filesystem::file_size(input, ec);
  const auto mtime = std::filesystem::last_write_time(input, ec).time_since_epoch().count();
  return {{"input", input.string()},
          {"input_bytes", size},
          {"input_mtime", static_cast<std::int64_t>(mtime)},
          {"model", a.model},
          {"model_name", model.name()},
          {"model_version", model.version()},
          {"keys", a.keys},
          {"chunk_rows", a.chunk_rows},
          {"block_rows", a.block_rows},
          {"served_by", a.served_by},
          {"rejects", std::filesystem::absolute(rejects).lexically_normal().string()}};
}

struct Checkpoint {
  std::size_t rows = 0;
  std::size_t scored = 0;
  std::size_t rejected = 0;
  std::size_t chunks = 0;
  std::uint64_t input_position = 0;
  std::uint64_t output_position = 0;
  std::uint64_t rejects_position = 0;
};

Status save_checkpoint(const std::string& path, const nlohmann::ordered_json& identity, const Checkpoint& c) {
  nlohmann::ordered_json doc{{"format", "ember-score-progress"}, {"version", 1}, {"run", identity},
                             {"rows", c.rows}, {"scored", c.scored}, {"rejected", c.rejected},
                             {"chunks", c.chunks}, {"input_position", c.input_position},
                             {"output_position", c.output_position}, {"rejects_position", c.rejects_position}};
  return write_file_atomically(path, doc.dump(2) + "\n");
}

Result<Checkpoint> load_checkpoint(const std::string& path, const nlohmann::ordered_json& identity) {
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  const auto doc = nlohmann::ordered_json::parse(text.str(), nullptr, false);
  const auto bad = [&](const std::string& why) {
    return ember::invalid_argument("'" + path + "' " + why + "; delete it to score from the beginning");
  };
  if (doc.is_discarded() || !doc.is_object() || doc.value("format", "") != "ember-score-progress") {
    return bad("is not an ember score checkpoint");
  }
  if (doc.value("version", 0) != 1) return bad("has an unknown version");
  const auto& run = doc["run"];
  for (const auto& [field, value] : identity.items()) {
    if (!run.contains(field) || run[field] != value) {
      return ember::failed_precondition("'" + path + "' was left by a run with another " + field + " (" +
                                        (run.contains(field) ? run[field].dump() : "none") + ", now " + value.dump() +
                                        "): run that command again with --resume, or delete it to start over");
    }
  }
  Checkpoint c;
  try {
    c.rows = doc.at("rows").get<std::size_t>();
    c.scored = doc.at("scored").get<std::size_t>();
    c.rejected = doc.at("rejected").get<std::size_t>();
    c.chunks = doc.at("chunks").get<std::size_t>();
    c.input_position = doc.at("input_position").get<std::uint64_t>();
    c.output_position = doc.at("output_position").get<std::uint64_t>();
    c.rejects_position = doc.at("rejects_position").get<std::uint64_t>();
  } catch (const nlohmann::json::exception&) {
    return bad("is damaged");
  }
  return c;
}

std::string thousands(std::uint64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 359999) return "--:--";
  const auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

// The progress bar: rows, rows/s and an ETA, redrawn on a terminal, a line a second
// otherwise (when forced).
class ProgressBar {
 public:
  ProgressBar(bool on, std::uint64_t total, bool rows_known, std::uint64_t start_position)
      : on_(on), tty_(::isatty(STDERR_FILENO) != 0), total_(total), rows_known_(rows_known),
        start_position_(start_position), start_(std::chrono::steady_clock::now()) {}

  void update(std::size_t rows_done, std::size_t rows_this_run, std::uint64_t position, bool last) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!last && now - drawn_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000))) return;
    drawn_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double frac = total_ == 0 ? 1.0 : std::min(1.0, static_cast<double>(position) / static_cast<double>(total_));
    const double rate = secs > 0 ? static_cast<double>(rows_this_run) / secs : 0.0;
    const double moved = static_cast<double>(position - start_position_);
    const double eta = moved > 0 ? secs * static_cast<double>(total_ - std::min(position, total_)) / moved : -1;
    const int width = 24;
    const int filled = static_cast<int>(frac * width);
    std::string line = "scoring [" + std::string(static_cast<std::size_t>(filled), '#') +
                       std::string(static_cast<std::size_t>(width - filled), ' ') + "] ";
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", frac * 100);
    line += pct;
    line += "  " + thousands(rows_done) + (rows_known_ ? " of " + thousands(total_) : std::string()) + " rows  " +
            thousands(static_cast<std::uint64_t>(rate)) + " rows/s  ETA " + (last ? "0:00" : clock_text(eta));
    if (tty_) {
      std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), last ? "\n" : "");
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool on_, tty_;
  std::uint64_t total_;
  bool rows_known_;
  std::uint64_t start_position_;
  std::chrono::steady_clock::time_point start_, drawn_{};
};

// Workers decode, predict and format chunks; the caller reads and writes them in order.
class Pipeline {
 public:
  Pipeline(const ember::Model& model, const score::Reader& reader, const score::Writer& writer,
           const score::Layout& layout, const ember::PredictOptions& options, unsigned threads)
      : model_(model), reader_(reader), writer_(writer), layout_(layout), options_(options) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pipeline() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void submit(std::unique_ptr<Chunk> chunk) {
    {
      std::lock_guard lock(mu_);
      todo_.push_back(std::move(chunk));
    }
    cv_.notify_all();
  }
  // The chunk with index `index`, once done.
  Result<std::unique_ptr<Chunk>> take(std::size_t index) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return done_.count(index) > 0 || !error_.ok(); });
    if (!error_.ok()) return error_;
    auto chunk = std::move(done_[index]);
    done_.erase(index);
    return chunk;
  }

 private:
  void work() {
    // LibTorch's thread count is per thread (OpenMP's): one core for each chunk.
    (void)ember::set_torch_threads(1);
    for (;;) {
      std::unique_ptr<Chunk> chunk;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !todo_.empty(); });
        if (todo_.empty()) return;
        chunk = std::move(todo_.front());
        todo_.pop_front();
      }
      Status st = process(*chunk);
      {
        std::lock_guard lock(mu_);
        if (!st.ok() && error_.ok()) error_ = st;
        const std::size_t index = chunk->index;
        done_[index] = std::move(chunk);
      }
      done_cv_.notify_all();
    }
  }

  Status process(Chunk& c) const {
    if (auto st = reader_.decode(c); !st.ok()) return st;
    if (c.rows > 0) {
      if (c.json) {
        c.status = model_.predict_batch(c.records, c.prediction, options_);
      } else {
        const ember::Columns columns{c.views, c.rows};
        c.status = model_.predict_batch(columns, c.prediction, options_);
      }
      if (!c.status.ok() && c.status.code() != ember::StatusCode::kInvalidArgument && c.prediction.rows.empty() &&
          c.prediction.validation.valid > 0) {
        return c.status.with_context("chunk at row " + std::to_string(c.first_row));
      }
    }
    if (auto st = writer_.format(c); !st.ok()) return st;
    score::format_rejects(c, layout_);
    return {};
  }

  const ember::Model& model_;
  const score::Reader& reader_;
  const score::Writer& writer_;
  const score::Layout& layout_;
  ember::PredictOptions options_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<std::unique_ptr<Chunk>> todo_;
  std::map<std::size_t, std::unique_ptr<Chunk>> done_;
  Status error_;
  bool closing_ = false;
};

std::string default_rejects(const std::string& output) {
  std::filesystem::path p(output);
  return (p.parent_path() / (p.stem().string() + ".rejects.jsonl")).string();
}

int cmd_score(ScoreArgs a) {
  // Keys may be given as "a,b" too.
  std::vector<std::string> keys;
  for (const auto& k : a.keys) {
    std::stringstream ss(k);
    for (std::string part; std::getline(ss, part, ',');) {
      if (!part.empty()) keys.push_back(part);
    }
  }
  a.keys = keys;
  if (a.chunk_rows == 0) return fail(ember::invalid_argument("--chunk-rows must be at least 1"));
  auto in_format = score::format_of(a.input, "--input");
  if (!in_format.ok()) return fail(in_format.status());
  auto out_format = score::format_of(a.output, "--output");
  if (!out_format.ok()) return fail(out_format.status());
  if (*out_format != "csv" && *out_format != "parquet") {
    return fail(ember::invalid_argument("--output '" + a.output + "': predictions are written as .csv or .parquet"));
  }
  if ((*in_format == "parquet" || *out_format == "parquet") && !score::parquet_available()) {
    return fail(ember::failed_precondition(
        "this ember was built without Parquet support (Apache Arrow's C++ libraries, from the pyarrow wheel, "
        "were not found when it was built): use .csv or .jsonl, or rebuild with pyarrow installed"));
  }
  auto fault = fault_from_env();
  if (!fault.ok()) return fail(fault.status());
  const std::string rejects = a.rejects.empty() ? default_rejects(a.output) : a.rejects;
  for (const auto& [what, path] : {std::pair{"--rejects", rejects}, std::pair{"--input", a.input}}) {
    std::error_code ec;
    if (std::filesystem::equivalent(path, a.output, ec)) {
      return fail(ember::invalid_argument(std::string(what) + " and --output are the same file"));
    }
  }

  const unsigned threads = a.threads > 0 ? static_cast<unsigned>(a.threads)
                                         : std::max(1U, std::thread::hardware_concurrency());
  // Chunks run side by side, each on one core: LibTorch's own threads would compete
  // (and --threads 1 means one core for the model).
  if (auto st = ember::set_torch_threads(1); !st.ok() && st.code() != ember::StatusCode::kUnimplemented) {
    return fail(st);  // (Unimplemented: a build without LibTorch, nothing to set)
  }
  ember::ModelOptions options;
  options.log = stderr_sink(false);
  options.schema.limits.max_document_bytes = a.max_record_bytes;
  std::shared_ptr<ember::Registry> registry;
  auto model = load_model_or_ref(a.model, a.registry, a.registry_key_file, registry, options);
  if (!model.ok()) return fail(model.status());

  score::ReaderOptions ro{a.input, *in_format, a.keys, a.max_record_bytes};
  auto reader = *in_format == "parquet" ? score::open_parquet_reader(ro, (*model)->schema())
                                        : score::open_text_reader(ro, (*model)->schema());
  if (!reader.ok()) return fail(reader.status());
  score::Layout layout = score::output_layout(**model, a.keys, a.served_by);
  layout.key_types = (*reader)->key_types();

  const std::string checkpoint_path = a.output + ".progress";
  const auto identity = run_identity(a, **model, rejects);
  Checkpoint at;
  const bool resuming = std::filesystem::exists(checkpoint_path);
  if (resuming) {
    if (!a.resume) {
      return fail(ember::failed_precondition("'" + checkpoint_path +
                                             "' says an earlier run was interrupted: run the same command with "
                                             "--resume to go on from its last chunk, or delete it to start over"));
    }
    auto loaded = load_checkpoint(checkpoint_path, identity);
    if (!loaded.ok()) return fail(loaded.status());
    at = *loaded;
  } else if (a.resume) {
    std::fprintf(stderr, "ember: nothing to resume ('%s' not found): scoring from the beginning\n",
                 checkpoint_path.c_str());
  }
  auto writer = *out_format == "parquet" ? score::open_parquet_writer(a.output, layout, resuming)
                                         : score::open_csv_writer(a.output, layout, resuming);
  if (!writer.ok()) return fail(writer.status());
  auto reject_file = score::PartialFile::open(rejects, resuming);  // the rejects' JSON lines
  if (!reject_file.ok()) return fail(reject_file.status());
  if (resuming) {
    if (auto st = (*writer)->truncate(at.output_position); !st.ok()) return fail(st);
    if (auto st = reject_file->truncate(at.rejects_position); !st.ok()) return fail(st);
    if (auto st = (*reader)->seek(at.input_position, at.rows); !st.ok()) return fail(st);
    std::fprintf(stderr, "ember: resuming after %s rows (%zu chunks) from '%s'\n", thousands(at.rows).c_str(),
                 at.chunks, checkpoint_path.c_str());
  } else {
    auto out_at = (*writer)->sync();
    if (!out_at.ok()) return fail(out_at.status());
    at.output_position = *out_at;
    if (auto st = save_checkpoint(checkpoint_path, identity, at); !st.ok()) return fail(st);
  }

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  const bool show = a.progress || (!a.no_progress && ::isatty(STDERR_FILENO) != 0);
  ProgressBar bar(show, (*reader)->size(), (*reader)->rows_known(), at.input_position);
  const auto start = std::chrono::steady_clock::now();
  const std::size_t rows_before = at.rows;
  Status failure;
  bool interrupted = false;
  {
    ember::PredictOptions predict_options;
    predict_options.block_rows = a.block_rows;
    Pipeline pipeline(**model, **reader, **writer, layout, predict_options, threads);
    const std::size_t max_in_flight = 2 * threads;
    std::size_t next_read = at.chunks, next_write = at.chunks, in_flight = 0;
    std::vector<std::unique_ptr<Chunk>> spare;
    bool end = false;
    for (;;) {
      while (!end && in_flight < max_in_flight && failure.ok()) {
        if (g_stop.load()) {
          interrupted = true;
          end = true;
          break;
        }
        std::unique_ptr<Chunk> chunk;
        if (spare.empty()) {
          chunk = std::make_unique<Chunk>();
        } else {  // its vectors keep their memory
          chunk = std::move(spare.back());
          spare.pop_back();
          chunk->strings.clear();
          chunk->batch.reset();
          chunk->out_batch.reset();
          chunk->status = Status();
        }
        chunk->index = next_read;
        auto got = (*reader)->read(a.chunk_rows, *chunk);
        if (!got.ok()) {
          failure = got.status();
          break;
        }
        if (!*got) {
          end = true;
          break;
        }
        ++next_read;
        ++in_flight;
        pipeline.submit(std::move(chunk));
      }
      if (in_flight == 0) break;
      auto chunk = pipeline.take(next_write);
      if (!chunk.ok()) {
        failure = chunk.status();
        break;
      }
      --in_flight;
      ++next_write;
      Chunk& c = **chunk;
      if (failure.ok()) {
        Status st = (*writer)->write(c);
        if (st.ok()) st = reject_file->append(c.reject_text);
        Result<std::uint64_t> out_at = st.ok() ? (*writer)->sync() : Result<std::uint64_t>(st);
        if (fault->kind == Fault::Kind::kKill && next_write == fault->after) std::raise(SIGKILL);
        Result<std::uint64_t> rej_at = out_at.ok() ? reject_file->sync() : Result<std::uint64_t>(out_at.status());
        if (!rej_at.ok()) {
          failure = rej_at.status();
          continue;  // drain what is in flight, keep the last checkpoint
        }
        at.rows += c.rows;
        at.scored += c.scored;
        at.rejected += c.rejected;
        at.chunks = next_write;
        at.input_position = c.end_position;
        at.output_position = *out_at;
        at.rejects_position = *rej_at;
        if (auto s = save_checkpoint(checkpoint_path, identity, at); !s.ok()) failure = s;
        bar.update(at.rows, at.rows - rows_before, at.input_position, false);
        if (fault->kind == Fault::Kind::kStop && next_write == fault->after) g_stop.store(true);
      }
      spare.push_back(std::move(*chunk));
    }
  }
  if (!failure.ok()) {
    if (at.chunks == 0) {  // nothing to resume: leave nothing behind
      std::error_code ec;
      std::filesystem::remove(checkpoint_path, ec);
      std::filesystem::remove(a.output + ".partial", ec);
      std::filesystem::remove_all(a.output + ".parts", ec);
      std::filesystem::remove(rejects + ".partial", ec);
    } else {
      std::fprintf(stderr, "ember: the %s rows scored before this error are kept: --resume goes on from there\n",
                   thousands(at.rows).c_str());
    }
    return fail(failure);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (interrupted) {
    std::fprintf(stderr, "\nember: interrupted after %s rows; run the same command with --resume to go on\n",
                 thousands(at.rows).c_str());
    return 130;
  }
  bar.update(at.rows, at.rows - rows_before, (*reader)->size(), true);
  if (auto st = (*writer)->finish(); !st.ok()) return fail(st);
  if (auto st = reject_file->finish(); !st.ok()) return fail(st);
  std::error_code ec;
  std::filesystem::remove(checkpoint_path, ec);
  const double rate = secs > 0 ? static_cast<double>(at.rows - rows_before) / secs : 0.0;
  if (a.json) {
    nlohmann::ordered_json summary{{"rows", at.rows},           {"scored", at.scored},
                                   {"rejected", at.rejected},   {"chunks", at.chunks},
                                   {"resumed_at_row", rows_before}, {"seconds", secs},
                                   {"rows_per_second", rate},   {"threads", threads},
                                   {"output", a.output},        {"rejects", rejects}};
    std::cout << summary.dump(2) << "\n";
  } else {
    std::fprintf(stderr, "ember: %s rows: %s scored -> %s, %s rejected -> %s (%.1f s, %s rows/s)\n",
                 thousands(at.rows).c_str(), thousands(at.scored).c_str(), a.output.c_str(),
                 thousands(at.rejected).c_str(), rejects.c_str(), secs, thousands(static_cast<std::uint64_t>(rate)).c_str());
  }
  return 0;
}

}  // namespace

void add_score_command(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<ScoreArgs>();
  auto* cmd = app.add_subcommand(
      "score",
      "Score a data set: records from a CSV, JSON lines or Parquet file through a model, chunk by chunk on every "
      "core; predictions with the key columns to a CSV or Parquet file, rejected records with their errors to "
      "JSON lines. An interrupted run goes on from its last chunk with --resume.");
  cmd->add_option("--model", args->model, "model directory, bundle, or NAME@ALIAS / NAME/VERSION with --registry")
      ->required();
  cmd->add_option("--registry", args->registry, "registry directory for a model reference")->envname("EMBER_REGISTRY");
  cmd->add_option("--registry-key-file", args->registry_key_file, "key of an encrypted registry")
      ->envname("EMBER_REGISTRY_KEY_FILE");
  cmd->add_option("--input", args->input, "data.csv, data.tsv, data.jsonl or data.parquet (by extension)")->required();
  cmd->add_option("--output", args->output, "preds.csv or preds.parquet (written when the run completes)")->required();
  cmd->add_option("--rejects", args->rejects,
                  "JSON lines of the records that could not be scored, with their errors "
                  "(default: <output stem>.rejects.jsonl beside the output)");
  cmd->add_option("--key", args->keys, "input column copied into each prediction row (repeat, or a,b)");
  cmd->add_option("--chunk-rows", args->chunk_rows, "records per chunk (default 10000)");
  cmd->add_option("--threads", args->threads, "chunks scored at once (default: every core)");
  cmd->add_option("--block-rows", args->block_rows,
                  "rows per model call (default 256): a row's score then does not depend on how the data is cut "
                  "into chunks, threads or partitions; 0: a whole chunk per call");
  cmd->add_flag("--resume", args->resume, "go on from the last chunk an interrupted run completed");
  cmd->add_flag("--served-by", args->served_by, "add a served_by column: the stage that answered each row");
  cmd->add_flag("--progress", args->progress, "draw the progress bar even when stderr is not a terminal");
  cmd->add_flag("--no-progress", args->no_progress, "never draw the progress bar");
  cmd->add_flag("--json", args->json, "print a JSON summary on stdout");
  cmd->add_option("--max-record-bytes", args->max_record_bytes, "longest record accepted (default 1 MiB)");
  cmd->callback([&run, args] { run = [args] { return cmd_score(*args); }; });
}

}  // namespace ember_cli
