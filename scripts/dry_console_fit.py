"""How far a fit of a mix with reverb/delay returns bends away from the producer's dry console.

    .venv/bin/python scripts/dry_console_fit.py --producer rio SONG [SONG ...]
        [--variants shipped,accept0.03,nofloor,nopolish,nofree,dry]

For a demo producer who prints sends into the mix (mixstyle.demo.sends, e.g. rio), each SONG
folder (a session made by that producer: stems/ and mix.wav) is fitted to the producer's mix and
the fitted console is rendered without returns. It is scored (band error in dB / MR-STFT on the
fitted excerpt) against the producer's mix and against the same producer's mix with the
returns taken out (their dry console, exactly). What the fit cannot explain it should leave
alone: the closer to the dry console, the less it bent its EQ, levels and compressors to
explain the returns. Variants:

- ``shipped``: the fit as it is
- ``acceptX``: keep a compressor if it removes the share X of its room (shipped: 0.1)
- ``nofloor``: no floor under the compressor's room (the rule before session 27)
- ``nopolish``: the curve fit alone, no waveform polish of the EQ
- ``nofree``: the polish held to the curve fit's gains + 1 dB, no free zone
- ``dry``: the fit of the dry mix itself (what the fit reaches without returns)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dsp.kernels import pin  # noqa: E402

pin()  # the kernels of the mixstyle command (dsp/kernels.py), before numpy and torch load


@contextlib.contextmanager
def variant_rules(variant: str) -> Iterator[dict]:
    """The fit's rules changed for ``variant``; yields the FitConfig changes."""
    from mixstyle.fit import compressor, eq
    shipped_fit, shipped_free = compressor.fit_compressor, eq.free_gain_db
    changes: dict = {}
    if variant.startswith("accept"):
        share = float(variant[len("accept"):])
        compressor.fit_compressor = lambda *a, **k: shipped_fit(*a, **dict(k, accept=share))
    elif variant == "nofloor":
        compressor.fit_compressor = lambda *a, **k: shipped_fit(*a, **dict(k, floor=0.0))
    elif variant == "nofree":
        eq.free_gain_db = lambda values, name: 0.0
    elif variant == "nopolish":
        changes["steps"] = 0
    elif variant not in ("shipped", "dry"):
        raise SystemExit(f"--variants: unknown variant {variant!r}")
    try:
        yield changes
    finally:
        compressor.fit_compressor, eq.free_gain_db = shipped_fit, shipped_free


def load(song: Path, producer) -> dict:
    """The song's stems, names, roles, the producer's mix and the same mix without returns."""
    import numpy as np

    from mixstyle.demo.sessions import song_stems
    from mixstyle.io.audio import read_audio
    items, sr = song_stems(song)
    mix, _ = read_audio(song / "mix.wav")
    return {"sr": sr, "names": [n for n, _, _ in items], "roles": [r for _, r, _ in items],
            "stems": np.stack([a for _, _, a in items]).astype(np.float32), "mix": mix,
            "dry": dataclasses.replace(producer, reverb=None, delay=None)
            .mix(items, sr, song.name).mix}


def score(data: dict, variant: str) -> dict:
    import numpy as np
    import torch

    from dsp.params import MASTER, neutral
    from mixstyle.fit.song import FitConfig, fit_mix
    from mixstyle.twin import console as twin
    from mixstyle.twin import losses
    sr, names, roles, stems, mix, dry = (data[k] for k in ("sr", "names", "roles", "stems",
                                                           "mix", "dry"))
    with variant_rules(variant) as changes:
        fitted = fit_mix(stems, dry if variant == "dry" else mix, sr, names, roles,
                         dataclasses.replace(FitConfig(), **changes))
    start = int(round(fitted.start_s * sr))
    stop = start + int(round(fitted.seconds * sr))
    tracks = fitted.setting.tracks
    x = np.stack([stems[i, :, start:stop] * 10 ** (t.params["input_gain_db"] / 20)
                  for i, t in enumerate(tracks)]).astype(np.float32)
    values = {k: torch.tensor([[t.params[k] for t in tracks]]) for k in tracks[0].params}
    master = {k: v for k, v in neutral(MASTER).items() if v is not None}
    out = {"compressed": f"{sum(t.params['comp_ratio'] > 1.0 for t in tracks)}/{len(tracks)}"}
    with torch.no_grad():
        y = twin.console(torch.from_numpy(x)[None], sr, values, master)
        for label, ref in (("vs mix", mix), ("vs dry", dry)):
            r = torch.from_numpy(np.ascontiguousarray(ref[:, start:stop], dtype=np.float32))[None]
            out[label] = f"{float(losses.band_db(y, r, sr)):.3f} / {float(losses.mrstft(y, r)):.3f}"
    return out


def main() -> int:
    from mixstyle.demo import sends
    ap = argparse.ArgumentParser()
    ap.add_argument("songs", nargs="+", type=Path)
    ap.add_argument("--producer", default="rio", help="a demo producer who prints sends")
    ap.add_argument("--variants", default="shipped,accept0.03,nofloor,nopolish,nofree,dry")
    args = ap.parse_args()
    producer = getattr(sends, args.producer.upper(), None)
    if not isinstance(producer, sends.SendsProducer):
        raise SystemExit(f"--producer {args.producer!r}: not a demo producer with sends "
                         f"(mixstyle.demo.sends)")
    for song in args.songs:
        if not (song / "mix.wav").is_file() or not (song / "stems").is_dir():
            raise SystemExit(f"{song}: expected a session folder with stems/ and mix.wav")
        data = load(song, producer)
        for variant in args.variants.split(","):
            print(song.name, variant, score(data, variant), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
