"""One set of numeric kernels on every CPU, so a result does not depend on the machine.

numpy, OpenBLAS, torch (ATen, MKL, oneDNN) each pick their SIMD kernels at run time from the
CPU: AVX-512 on one Xeon, AVX2 on an AMD EPYC. The kernels round differently, and learning
(fits that iterate, a network that trains) carries those last bits into a different profile:
held-out scores 0.1-0.2 dB and up to 0.8 LU apart for the same songs (docs/RESULTS.md). So every
mixstyle process asks the libraries for one named level before they load:

``x86-64-v3`` (AVX2 + FMA, every x86 CPU since 2013-2015): the default where the CPU has it.
``x86-64-v2`` (SSE4.2): the fallback on an older x86 CPU, or asked for by name; tested, slower,
    and its results differ from v3's (a different kernel is a different rounding).
``native``: each library's own choice (``MIXSTYLE_KERNELS=native``; also what non-x86 machines
    get): fastest on an AVX-512 machine, and machine-dependent.

``MIXSTYLE_KERNELS`` chooses (``auto``, the default: v3 where the CPU has it, else v2). The
level must be set before numpy or torch is imported: ``pin()`` is the first thing the
``mixstyle`` command does, and worker processes inherit the environment (a Dask worker started
by hand: ``eval $(python -m dsp.kernels)`` first). ``state()`` says what
is in effect in this process, for the model card. numba compiles for the CPU it runs on unless
told otherwise, and that is a kernel choice too: on an AVX-512 Xeon its code for the host
rounded differently from its code for an AVX2 target (``scripts/kernel_digest.py``'s records:
host cdf37b87..., ``haswell`` and ``znver2`` both 26579428...; docs/RESULTS.md), although
compiled without reassociation (``FASTMATH = {"contract"}``). So the level names numba's target
as well (``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES``: the level's own instruction set, not
the machine's).

MKL (torch's BLAS, used by the EQ fits and the training) honours a named branch only on Intel
CPUs: on an AMD CPU ``MKL_CBWR=AVX2`` falls back to MKL's own choice (measured on an EPYC: AVX2,
SSE4_2 and AUTO gave the same bits, COMPATIBLE others; oneMKL's guide says so). Its
``COMPATIBLE`` branch is the one meant to give the same results on every Intel-compatible x86
CPU, so both levels ask for it (``scripts/kernel_digest.py``'s small learn took 7% longer).
"""

from __future__ import annotations

import os
import platform
import sys

CHOICE = "MIXSTYLE_KERNELS"
PINNED = "MIXSTYLE_KERNELS_PINNED"   # set by pin(): the level the environment now asks for

# what each library reads, once, when it loads (numpy's names are those of numpy >= 2.4)
LEVELS: dict[str, dict[str, str]] = {
    "x86-64-v3": {"ATEN_CPU_CAPABILITY": "avx2",
                  "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                  "OPENBLAS_CORETYPE": "Haswell",
                  "MKL_CBWR": "COMPATIBLE",
                  "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                  "ONEDNN_MAX_CPU_ISA": "AVX2",
                  "NUMBA_CPU_NAME": "haswell",
                  "NUMBA_CPU_FEATURES": "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,"
                                        "+fxsr,+lzcnt,+mmx,+movbe,+popcnt,+sahf,+sse,+sse2,+sse3,"
                                        "+sse4.1,+sse4.2,+ssse3,+xsave"},
    "x86-64-v2": {"ATEN_CPU_CAPABILITY": "default",
                  "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
                  "OPENBLAS_CORETYPE": "Nehalem",
                  "MKL_CBWR": "COMPATIBLE",
                  "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                  "ONEDNN_MAX_CPU_ISA": "SSE41",
                  "NUMBA_CPU_NAME": "nehalem",
                  "NUMBA_CPU_FEATURES": "+64bit,+cmov,+cx16,+cx8,+fxsr,+mmx,+popcnt,+sahf,+sse,"
                                        "+sse2,+sse3,+sse4.1,+sse4.2,+ssse3"},
}
# what numpy's top dispatch level and torch's CPU capability read under each level
_SEEN = {"x86-64-v3": ("X86_V3", "AVX2"), "x86-64-v2": ("X86_V2", "DEFAULT")}
_V3_FLAGS = {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe"}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _is_x86() -> bool:
    return platform.machine().lower() in {"x86_64", "amd64"}


def choose(choice: str | None = None) -> str:
    """The level ``choice`` (or ``$MIXSTYLE_KERNELS``) means on this CPU."""
    choice = (choice if choice is not None else os.environ.get(CHOICE, "auto")).strip() or "auto"
    if choice not in ("auto", "native", *LEVELS):
        raise ValueError(f"{CHOICE}={choice!r}: expected auto, native, "
                         f"{', '.join(LEVELS)}")
    if choice == "native" or not _is_x86():
        return "native"
    if choice == "auto":
        return "x86-64-v3" if _V3_FLAGS <= _cpu_flags() else "x86-64-v2"
    if choice == "x86-64-v3" and not _V3_FLAGS <= _cpu_flags():
        raise ValueError(f"{CHOICE}=x86-64-v3: this CPU lacks "
                         f"{', '.join(sorted(_V3_FLAGS - _cpu_flags()))}")
    return choice


def pin(choice: str | None = None) -> str:
    """Ask numpy, OpenBLAS, torch and numba for one kernel level (over whatever the environment set:
    ``OPENBLAS_CORETYPE`` included), before they load; returns the level. Child processes
    inherit it. Once numpy or torch is loaded (mixstyle called as a library) it changes
    nothing, so a process and its children keep one choice: ``state()`` tells which."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        return os.environ.get(PINNED, "native")
    level = choose(choice)
    os.environ.update(LEVELS.get(level, {}))
    os.environ[PINNED] = level
    return level


def state() -> dict[str, object]:
    """What this process runs on: the level asked for and whether every loaded library obeys
    it (``pinned``: false when numpy or torch loaded before ``pin()``, or under ``native``)."""
    level = os.environ.get(PINNED, "native")
    asked = LEVELS.get(level, {})
    pinned = bool(asked) and all(os.environ.get(k) == v for k, v in asked.items())
    want_numpy, want_torch = _SEEN.get(level, ("", ""))
    found: dict[str, str] = {}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
            top = "X86_V4" if features.get("X86_V4") else (
                "X86_V3" if features.get("X86_V3") else "X86_V2")
            found["numpy"] = top
            pinned = pinned and top == want_numpy
        except ImportError:
            pinned = False
    torch = sys.modules.get("torch")
    if torch is not None:
        capability = str(torch.backends.cpu.get_cpu_capability())
        found["torch"] = capability
        pinned = pinned and capability.upper() == want_torch
    numba = sys.modules.get("numba")
    if numba is not None:
        found["numba"] = str(numba.config.CPU_NAME or "host")
        pinned = pinned and (numba.config.CPU_NAME, numba.config.CPU_FEATURES) == (
            asked.get("NUMBA_CPU_NAME"), asked.get("NUMBA_CPU_FEATURES"))
    return {"level": level, "pinned": pinned, "libraries": found,
            "machine": platform.machine()}


def exports(choice: str | None = None) -> str:
    """Shell lines that give a process started elsewhere (a Dask worker) mixstyle's kernels:
    ``eval $(python -m dsp.kernels)`` before ``dask worker ...``."""
    level = choose(choice)
    pairs = {**LEVELS.get(level, {}), PINNED: level}
    return "\n".join(f"export {k}='{v}'" for k, v in pairs.items())


if __name__ == "__main__":
    try:
        print(exports(sys.argv[1] if len(sys.argv) > 1 else None))
    except ValueError as e:
        sys.exit(f"python -m dsp.kernels: {e}")
