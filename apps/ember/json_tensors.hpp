#pragma once

// Tensors to and from JSON for the command-line tool.

#include <string>

#include <nlohmann/json.hpp>

#include "ember/schema.hpp"
#include "ember/status.hpp"
#include "ember/tensor.hpp"

namespace ember::cli {

/// One tensor from JSON: nested arrays of numbers (float32) or of booleans (bool), or
/// {"dtype": "int64", "data": nested arrays} for another dtype. `path` is the JSON
/// Pointer of `value`, used in error messages.
Result<Tensor> tensor_from_json(const nlohmann::json& value, const std::string& path);

/// The inputs of a request: a top-level array (or typed object) is the one positional
/// input; any other object maps input names to tensors.
Result<NamedTensors> inputs_from_json(const nlohmann::json& doc, bool& positional);

/// Nested arrays of the tensor's values (a bare value for 0-dim tensors). NaN and
/// infinities, which JSON cannot hold, are written as the strings "NaN", "Infinity"
/// and "-Infinity". Float values are written with the fewest digits that round-trip.
std::string tensor_to_json_text(const Tensor& tensor);

/// A validation error as JSON: instance_path, schema_path, keyword, message.
nlohmann::ordered_json error_json(const ValidationError& e);

}  // namespace ember::cli
