#pragma once

/// Everything in ember's public API (except the optional ember/torch.hpp interop).

#include "ember/bundle.hpp"
#include "ember/deployment.hpp"
#include "ember/drift.hpp"
#include "ember/executor.hpp"
#include "ember/export.hpp"
#include "ember/fallback.hpp"
#include "ember/json.hpp"
#include "ember/linear.hpp"
#include "ember/log.hpp"
#include "ember/metrics.hpp"
#include "ember/model.hpp"
#include "ember/monitor.hpp"
#include "ember/pipeline.hpp"
#include "ember/registry.hpp"
#include "ember/resilience.hpp"
#include "ember/schema.hpp"
#include "ember/status.hpp"
#include "ember/tensor.hpp"
#include "ember/threads.hpp"
#include "ember/version.hpp"
