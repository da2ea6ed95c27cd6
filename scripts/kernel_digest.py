"""The fingerprint of one small, fixed learn: run it on two machines and compare.

    .venv/bin/python scripts/kernel_digest.py [--kernels auto|native|x86-64-v2] [--work DIR]

Learns 6 synthetic songs (3 s, 4 stems, mixed by fixed gains, HPF and pans through pedalboard)
with `mixstyle learn` and prints the SHA-256 of the learned weights and of the song records,
the held-out band error and the library versions. With the same versions, the pinned kernels
(dsp/kernels.py) must print the same digests on every x86-64-v3 CPU; docs/RESULTS.md lists
what each machine printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make_sessions(folder: Path) -> None:
    import numpy as np
    import pedalboard
    from mixstyle.io.audio import write_audio_atomic
    sys.path.append(str(ROOT / "tests"))
    from conftest import synthetic_stems
    sr = 44100.0
    gains, hpfs, pans = (0.5, 1.4, 0.8, 1.1), (40.0, 120.0, 300.0, 80.0), (0.0, -0.4, 0.3, 0.1)
    for k in range(6):
        stems = synthetic_stems(seed=10 + k, seconds=3.0, n_stems=4)
        song = folder / f"song{k:02d}"
        (song / "stems").mkdir(parents=True)
        mix = np.zeros(stems.shape[1:], dtype=np.float32)
        for i, audio in enumerate(stems):
            write_audio_atomic(song / "stems" / f"track{i}.wav", audio, sr)
            y = pedalboard.Pedalboard([pedalboard.HighpassFilter(hpfs[i])])(audio, sr) * gains[i]
            a = np.pi * (pans[i] + 1) / 4
            mix += y * np.array([[np.sqrt(2) * np.cos(a)], [np.sqrt(2) * np.sin(a)]],
                                dtype=np.float32)
        write_audio_atomic(song / "mix.wav", mix, sr)


def digest(profile: Path, sessions: Path) -> dict:
    import numpy as np
    with np.load(profile / "weights.npz") as w:
        weights = hashlib.sha256(b"".join(w[k].tobytes() for k in sorted(w.files))).hexdigest()
    h = hashlib.sha256()
    for p in sorted((profile / "songs").glob("*.json")):
        h.update(p.read_text().replace(str(sessions), "SESSIONS").encode())  # not the path
    card = json.loads((profile / "model_card.json").read_text())
    return {"weights": weights[:16], "records": h.hexdigest()[:16],
            "held_out_band_db": card["held_out_score"]["learned"]["band_error_db"],
            "kernels": card["kernels"]["learn"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", default="auto")
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="kernel_digest_"))
    sessions, profile = work / "sessions", work / f"profile_{args.kernels}"
    if not sessions.exists():
        make_sessions(sessions)
    if profile.exists():
        sys.exit(f"{profile} exists: give another --work")
    env = dict(os.environ, MIXSTYLE_KERNELS=args.kernels, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "mixstyle.cli", "learn", str(sessions), "--out",
                        str(profile), "--epochs", "40", "--audio-epochs", "1", "--fit-steps",
                        "4", "--quiet"], env=env, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"learn failed ({r.returncode}): {r.stderr[-3000:]}")
    import numpy
    import torch
    out = {**digest(profile, sessions), "numpy": numpy.__version__, "torch": torch.__version__,
           "cpu": next((line.split(":", 1)[1].strip() for line in
                        Path("/proc/cpuinfo").read_text().splitlines()
                        if line.startswith("model name")), "?")}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
