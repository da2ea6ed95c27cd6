#!/usr/bin/env bash
# Runs the test suite as it would run on other CPUs: OpenBLAS kernel families (OPENBLAS_CORETYPE),
# numpy's SIMD dispatch (NPY_DISABLE_CPU_FEATURES), torch's kernels (ATEN_CPU_CAPABILITY), MKL's
# instruction set (MKL_ENABLE_INSTRUCTIONS) and numba's code generation target (NUMBA_CPU_NAME).
# A result that holds on one and not another is a defect of the code or of the test. The
# `mixstyle` commands the tests start pin their own kernels (dsp/kernels.py); MIXSTYLE_KERNELS=native
# lets the variant reach them too (tests/mixstyle/test_kernels.py checks the pin itself).
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

# OpenBLAS runs the kernels it is told to: SkylakeX's are AVX-512 code, which a CPU without
# AVX-512 stops with an illegal instruction (SIGILL) before any test runs. Such a variant is
# reported as not run (exit status 3 when nothing failed), never as passed.
status=0
not_run=()
for v in "${variants[@]}"; do
  e=$(env_of "$v") || exit 2
  if [ "$v" = skylakex ] && ! grep -qw avx512f /proc/cpuinfo; then
    echo "== $v: NOT RUN: this CPU has no AVX-512 ($e would stop with an illegal instruction);"
    echo "   run it on a machine with AVX-512"
    not_run+=("$v")
    continue
  fi
  echo "== $v: $e"
  env $e MIXSTYLE_KERNELS=native MIXSTYLE_REQUIRE_REAL=1 .venv/bin/python -m pytest -q -p no:cacheprovider "${args[@]}" \
    | tail -n 25 || status=1
done
if [ $status -eq 0 ] && [ ${#not_run[@]} -gt 0 ]; then
  echo "cpu_matrix: passed, but not run here: ${not_run[*]}"
  exit 3
fi
exit $status
