#!/usr/bin/env bash
# Runs the test suite as it would run on other CPUs: OpenBLAS kernel families (OPENBLAS_CORETYPE),
# numpy's SIMD dispatch (NPY_DISABLE_CPU_FEATURES), torch's kernels (ATEN_CPU_CAPABILITY), MKL's
# instruction set (MKL_ENABLE_INSTRUCTIONS) and numba's code generation target (NUMBA_CPU_NAME).
# A result that holds on one and not another is a defect of the code or of the test.
#   scripts/cpu_matrix.sh [VARIANT...] [-- PYTEST ARGS]     variants: haswell skylakex sandybridge prescott
set -uo pipefail
cd "$(dirname "$0")/.."
variants=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do variants+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#variants[@]} -eq 0 ] && variants=(haswell skylakex sandybridge prescott)
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(tests)

env_of() {
  case "$1" in
    haswell)     echo "OPENBLAS_CORETYPE=Haswell" ;;
    skylakex)    echo "OPENBLAS_CORETYPE=SkylakeX" ;;
    sandybridge) echo "OPENBLAS_CORETYPE=Sandybridge NPY_DISABLE_CPU_FEATURES=X86_V3 ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=AVX NUMBA_CPU_NAME=sandybridge" ;;
    prescott)    echo "OPENBLAS_CORETYPE=Prescott NPY_DISABLE_CPU_FEATURES=X86_V3 ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 NUMBA_CPU_NAME=generic" ;;
    *) echo "cpu_matrix: unknown variant '$1' (haswell skylakex sandybridge prescott)" >&2; exit 2 ;;
  esac
}

status=0
for v in "${variants[@]}"; do
  e=$(env_of "$v") || exit 2
  echo "== $v: $e"
  env $e MIXSTYLE_REQUIRE_REAL=1 .venv/bin/python -m pytest -q -p no:cacheprovider "${args[@]}" \
    | tail -n 25 || status=1
done
exit $status
