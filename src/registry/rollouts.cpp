// Rollouts as the registry keeps them: the plan, the step and the state, changed only in
// transactions together with the alias moves they imply, so that any process (a
// restarted server, `ember rollout` on the command line) sees one consistent story.
#include <nlohmann/json.hpp>

#include "ember/rollout.hpp"
#include "registry/registry_internal.hpp"

namespace ember {

namespace {

constexpr std::string_view kColumns =
    "id, name, alias, control, candidate, plan, state, step, step_started_us, reason, status, actor, started_us, "
    "updated_us, revision";

RolloutRecord read_record(const detail::Stmt& st) {
  RolloutRecord r;
  r.id = st.int64(0);
  r.name = st.text(1);
  r.alias = st.text(2);
  r.control = st.int64(3);
  r.candidate = st.int64(4);
  r.plan = st.text(5);
  r.state = st.text(6);
  r.step = st.int64(7);
  r.step_started_us = st.int64(8);
  r.reason = st.text(9);
  r.status = st.text(10);
  r.actor = st.text(11);
  r.started_us = st.int64(12);
  r.updated_us = st.int64(13);
  r.revision = st.int64(14);
  return r;
}

std::string subject_of(const RolloutRecord& r) { return r.name + "@" + r.alias; }

// The latest rollout of name@alias; NotFound when none. Hold the registry's mutex.
Result<RolloutRecord> latest(detail::Db& db, std::string_view name, std::string_view alias) {
  auto st = db.prepare("SELECT " + std::string(kColumns) +
                       " FROM rollouts WHERE name = ? AND alias = ? ORDER BY id DESC LIMIT 1");
  if (!st.ok()) return st.status();
  st->bind(1, name).bind(2, alias);
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found("model " + std::string(name) + "@" + std::string(alias) + " has no rollout");
  return read_record(*st);
}

Result<RolloutRecord> by_id(detail::Db& db, std::int64_t id) {
  auto st = db.prepare("SELECT " + std::string(kColumns) + " FROM rollouts WHERE id = ?");
  if (!st.ok()) return st.status();
  st->bind(1, id);
  auto row = st->step();
  if (!row.ok()) return row.status();
  if (!*row) return not_found("no rollout has id " + std::to_string(id));
  return read_record(*st);
}

Status check_status_json(std::string_view status_json) {
  if (status_json.empty()) return {};
  if (status_json.size() > (std::size_t{1} << 20)) return invalid_argument("a rollout's status is at most 1 MiB");
  const auto j = nlohmann::json::parse(status_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("a rollout's status must be a JSON object");
  return {};
}

Status check_reason(std::string_view reason) {
  if (reason.size() > 4096) return invalid_argument("a reason is at most 4096 bytes");
  return {};
}

// Writes the record's mutable fields back, bumping the revision, and audits `event`.
Status store(Registry::Impl& impl, RolloutRecord& r, std::string_view actor, std::string_view event,
             std::string_view status_json) {
  r.updated_us = impl.now_us();
  ++r.revision;
  if (!status_json.empty()) r.status.assign(status_json);
  auto st = impl.db.prepare(
      "UPDATE rollouts SET state = ?, step = ?, step_started_us = ?, reason = ?, status = ?, updated_us = ?, "
      "revision = ? WHERE id = ?");
  if (!st.ok()) return st.status();
  st->bind(1, r.state).bind(2, r.step).bind(3, r.step_started_us).bind(4, r.reason).bind(5, r.status)
      .bind(6, r.updated_us).bind(7, r.revision).bind(8, r.id);
  EMBER_RETURN_IF_ERROR(st->run());
  return impl.audit_append(actor, event, subject_of(r),
                           detail::detail_json({{"rollout", std::to_string(r.id)},
                                                {"candidate", std::to_string(r.candidate)},
                                                {"control", std::to_string(r.control)},
                                                {"state", r.state},
                                                {"step", std::to_string(r.step + 1)},
                                                {"reason", r.reason}}));
}

Status check_revision(const RolloutRecord& r, std::int64_t expected) {
  if (expected != Registry::kAnyVersion && expected != r.revision) {
    return Status(StatusCode::kAborted, "rollout " + std::to_string(r.id) + " of " + subject_of(r) +
                                            " changed (revision " + std::to_string(r.revision) + ", not " +
                                            std::to_string(expected) + "); read it again");
  }
  return {};
}

}  // namespace

Result<RolloutRecord> Registry::start_rollout(std::string_view name, std::string_view alias, std::int64_t candidate,
                                              std::string_view plan_json, std::string_view actor,
                                              std::string_view reason) {
  if (!valid_model_name(name)) return invalid_argument("model name '" + std::string(name) + "' is malformed");
  EMBER_RETURN_IF_ERROR(detail::check_alias_name(alias));
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  EMBER_RETURN_IF_ERROR(check_reason(reason));
  if (candidate <= 0) return invalid_argument("a version is a positive integer");
  auto plan = parse_rollout_plan(plan_json);
  if (!plan.ok()) return plan.status().with_context("rollout plan");
  const std::string plan_text = rollout_plan_to_json(*plan);
  return impl_->write([&]() -> Result<RolloutRecord> {
    auto previous = latest(impl_->db, name, alias);
    if (previous.ok() && previous->active()) {
      return failed_precondition("rollout " + std::to_string(previous->id) + " of " + subject_of(*previous) +
                                 " (version " + std::to_string(previous->candidate) + ") is " + previous->state +
                                 "; promote or abort it first");
    }
    if (!previous.ok() && previous.status().code() != StatusCode::kNotFound) return previous.status();
    auto control = detail::alias_target(impl_->db, name, alias);
    if (!control.ok()) return control.status();
    if (*control == 0) {
      return not_found("alias " + std::string(name) + "@" + std::string(alias) +
                       " is not set: a rollout needs a version serving now to compare with");
    }
    if (*control == candidate) {
      return invalid_argument("alias " + std::string(name) + "@" + std::string(alias) + " holds version " +
                              std::to_string(candidate) + " already");
    }
    auto id = detail::aliasable_version_id(*impl_, name, candidate);
    if (!id.ok()) return id.status();
    EMBER_RETURN_IF_ERROR(detail::check_policy(*impl_, name, alias, candidate, *id));
    RolloutRecord r;
    r.name.assign(name);
    r.alias.assign(alias);
    r.control = *control;
    r.candidate = candidate;
    r.plan = plan_text;
    r.state = "running";
    r.reason.assign(reason);
    r.actor.assign(actor);
    r.started_us = r.updated_us = r.step_started_us = impl_->now_us();
    r.revision = 1;
    auto st = impl_->db.prepare(
        "INSERT INTO rollouts(name, alias, control, candidate, plan, state, step, step_started_us, reason, status, "
        "actor, started_us, updated_us, revision) VALUES(?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)");
    if (!st.ok()) return st.status();
    st->bind(1, r.name).bind(2, r.alias).bind(3, r.control).bind(4, r.candidate).bind(5, r.plan).bind(6, r.state)
        .bind(7, r.step_started_us).bind(8, r.reason).bind(9, r.status).bind(10, r.actor).bind(11, r.started_us)
        .bind(12, r.updated_us).bind(13, r.revision);
    EMBER_RETURN_IF_ERROR(st->run());
    auto row = impl_->db.prepare("SELECT last_insert_rowid()");
    if (!row.ok()) return row.status();
    auto has = row->step();
    if (!has.ok()) return has.status();
    r.id = row->int64(0);
    EMBER_RETURN_IF_ERROR(impl_->audit_append(
        actor, "rollout_start", subject_of(r),
        detail::detail_json({{"rollout", std::to_string(r.id)},
                             {"candidate", std::to_string(r.candidate)},
                             {"control", std::to_string(r.control)},
                             {"plan", r.plan},
                             {"reason", r.reason}})));
    return r;
  });
}

Result<RolloutRecord> Registry::rollout(std::string_view name, std::string_view alias) {
  if (!valid_model_name(name)) return invalid_argument("model name '" + std::string(name) + "' is malformed");
  EMBER_RETURN_IF_ERROR(detail::check_alias_name(alias));
  std::lock_guard<std::mutex> guard(impl_->mu);
  return latest(impl_->db, name, alias);
}

Result<std::vector<RolloutRecord>> Registry::rollouts(std::string_view name) {
  std::lock_guard<std::mutex> guard(impl_->mu);
  auto st = impl_->db.prepare("SELECT " + std::string(kColumns) + " FROM rollouts WHERE ?1 = '' OR name = ?1 ORDER BY id");
  if (!st.ok()) return st.status();
  st->bind(1, name);
  std::vector<RolloutRecord> out;
  EMBER_RETURN_IF_ERROR(st->each([&] { out.push_back(read_record(*st)); }));
  return out;
}

Result<RolloutRecord> Registry::command_rollout(std::string_view name, std::string_view alias, RolloutCommand command,
                                                std::string_view actor, std::string_view reason,
                                                std::int64_t expected_revision, std::string_view status_json) {
  if (!valid_model_name(name)) return invalid_argument("model name '" + std::string(name) + "' is malformed");
  EMBER_RETURN_IF_ERROR(detail::check_alias_name(alias));
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  EMBER_RETURN_IF_ERROR(check_reason(reason));
  EMBER_RETURN_IF_ERROR(check_status_json(status_json));
  return impl_->write([&]() -> Result<RolloutRecord> {
    auto r = latest(impl_->db, name, alias);
    if (!r.ok()) return r.status();
    EMBER_RETURN_IF_ERROR(check_revision(*r, expected_revision));
    const std::string was = r->state;
    auto refuse = [&](std::string_view what) {
      return failed_precondition("rollout " + std::to_string(r->id) + " of " + subject_of(*r) + " is " + was +
                                 ": it cannot be " + std::string(what));
    };
    auto current = detail::alias_target(impl_->db, name, alias);
    if (!current.ok()) return current.status();
    std::string event;
    switch (command) {
      case RolloutCommand::kPause:
        if (was != "running") return refuse("paused");
        r->state = "paused";
        event = "rollout_pause";
        break;
      case RolloutCommand::kResume:
        if (was != "paused") return refuse("resumed");
        r->state = "running";
        r->step_started_us = impl_->now_us();  // the step starts over: its evidence must be fresh
        event = "rollout_resume";
        break;
      case RolloutCommand::kPromote: {
        if (!r->active()) return refuse("promoted");
        if (*current != r->control) {
          return Status(StatusCode::kAborted, "alias " + subject_of(*r) + " moved to version " +
                                                  std::to_string(*current) + " during the rollout (it held " +
                                                  std::to_string(r->control) + "); abort the rollout");
        }
        auto id = detail::aliasable_version_id(*impl_, name, r->candidate);
        if (!id.ok()) return id.status();
        EMBER_RETURN_IF_ERROR(detail::check_policy(*impl_, name, alias, r->candidate, *id));
        auto moved = detail::move_alias(*impl_, name, alias, *current, r->candidate, actor,
                                        "rollout " + std::to_string(r->id) + " promoted", "set");
        if (!moved.ok()) return moved.status();
        r->state = "promoted";
        event = "rollout_promote";
        break;
      }
      case RolloutCommand::kAbort: {
        if (was == "aborted") return refuse("aborted again");
        // The alias goes back to the control: after a promotion, or when someone moved it.
        if (*current != r->control) {
          if (was == "promoted" && *current != r->candidate) {
            return failed_precondition("alias " + subject_of(*r) + " holds version " + std::to_string(*current) +
                                       ", set after the rollout; move it with 'ember registry alias'");
          }
          auto id = detail::aliasable_version_id(*impl_, name, r->control);
          if (!id.ok()) return id.status().with_context("the control cannot take the alias back");
          auto moved = detail::move_alias(*impl_, name, alias, *current, r->control, actor,
                                          "rollout " + std::to_string(r->id) + " aborted", "rollback");
          if (!moved.ok()) return moved.status();
        }
        r->state = "aborted";
        event = "rollout_abort";
        break;
      }
    }
    r->reason.assign(reason);
    EMBER_RETURN_IF_ERROR(store(*impl_, *r, actor, event, status_json));
    return r;
  });
}

Result<RolloutRecord> Registry::advance_rollout(std::int64_t id, std::int64_t step, std::int64_t expected_revision,
                                                std::string_view status_json, std::string_view actor,
                                                std::string_view reason) {
  EMBER_RETURN_IF_ERROR(detail::check_actor(actor));
  EMBER_RETURN_IF_ERROR(check_reason(reason));
  EMBER_RETURN_IF_ERROR(check_status_json(status_json));
  return impl_->write([&]() -> Result<RolloutRecord> {
    auto r = by_id(impl_->db, id);
    if (!r.ok()) return r.status();
    EMBER_RETURN_IF_ERROR(check_revision(*r, expected_revision));
    if (r->state != "running") {
      return failed_precondition("rollout " + std::to_string(id) + " is " + r->state + ", not running");
    }
    auto plan = parse_rollout_plan(r->plan);
    if (!plan.ok()) return plan.status().with_context("rollout " + std::to_string(id) + "'s stored plan");
    if (step <= r->step || step >= static_cast<std::int64_t>(plan->steps.size())) {
      return invalid_argument("rollout " + std::to_string(id) + " is at step " + std::to_string(r->step + 1) + " of " +
                              std::to_string(plan->steps.size()) + "; it cannot move to step " +
                              std::to_string(step + 1));
    }
    r->step = step;
    r->step_started_us = impl_->now_us();
    r->reason.assign(reason);
    EMBER_RETURN_IF_ERROR(store(*impl_, *r, actor, "rollout_step", status_json));
    return r;
  });
}

Status Registry::save_rollout_status(std::int64_t id, std::string_view status_json) {
  EMBER_RETURN_IF_ERROR(check_status_json(status_json));
  return impl_->write([&]() -> Status {
    auto r = by_id(impl_->db, id);
    if (!r.ok()) return r.status();
    auto st = impl_->db.prepare("UPDATE rollouts SET status = ? WHERE id = ?");
    if (!st.ok()) return st.status();
    st->bind(1, status_json.empty() ? std::string_view("{}") : status_json).bind(2, id);
    EMBER_RETURN_IF_ERROR(st->run());
    return {};
  });
}

}  // namespace ember
