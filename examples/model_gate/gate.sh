#!/usr/bin/env bash
# Builds the model gate against the ember Conan package (once; kept in the build folder)
# and runs it with the given arguments:
#
#   gate.sh record --model DIR|REF [--registry DIR] --records RECORDS.jsonl --out GOLDEN.jsonl
#   gate.sh check --candidate DIR --production DIR|REF [--registry DIR] --golden GOLDEN.jsonl \
#                 [--tolerance 1e-4] [--latency-budget 1.5] [--rounds 7] [--json REPORT.json]
#
# Exit status: 0 passed, 1 the gate failed, 2 bad usage or input (or the build failed).
# Environment: GATE_CONAN_PROFILE (default: Conan's default profile), GATE_BUILD_DIR
# (default: ./model-gate-build), GATE_CONAN_ARGS (more arguments for conan install, e.g.
# "--no-remote" offline or "-r mycompany" for a remote with ember).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(mkdir -p "${GATE_BUILD_DIR:-model-gate-build}" && cd "${GATE_BUILD_DIR:-model-gate-build}" && pwd)
profile=${GATE_CONAN_PROFILE:-default}
command -v conan >/dev/null || { echo "gate.sh: conan is not on PATH (pip install conan)" >&2; exit 2; }

if [ ! -x "$build/bin/model_gate" ] || [ "$here/model_gate.cpp" -nt "$build/bin/model_gate" ]; then
  echo "gate.sh: building the model gate against the ember package ($profile profile)" >&2
  # shellcheck disable=SC2086
  conan install "$here" --output-folder "$build" -pr:a "$profile" --build=missing ${GATE_CONAN_ARGS:-} >"$build/conan.log" 2>&1 ||
    { cat "$build/conan.log" >&2; exit 2; }
  { cmake -S "$here" -B "$build/cmake" -DCMAKE_TOOLCHAIN_FILE="$build/conan_toolchain.cmake" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$build/bin" &&
    cmake --build "$build/cmake" --parallel; } >"$build/cmake.log" 2>&1 || { cat "$build/cmake.log" >&2; exit 2; }
fi
# conanrun.sh: where ember's shared libraries (and LibTorch's) are found at run time.
set +u
# shellcheck disable=SC1091
source "$build/conanrun.sh"
set -u
exec "$build/bin/model_gate" "$@"
