"""Fit mixstyle/sessions/role_model.py: the typical sound of each role, from generated audio only.

    .venv/bin/python scripts/fit_role_model.py [--songs 24] [--seed 31] [--seconds 15] [--work DIR]

Makes demo songs (mixstyle.demo.songs, fluidsynth + mma; the cache in --work is reused), whose
stem names are their labels (mixstyle.demo.styles.STEM_ROLES); renders every part once more with
a GM program (or drum kit) the demo styles never use (``ALT_PROGRAMS``, so a role is not learned
as "the two GM basses the demo has"); renders the drum tracks real sessions have and the demo
does not (hats, toms, cymbals alone; the whole kit, ``DRUM_PARTS``); can add synthetic effects
(noise risers, falls and impacts, made here from a seeded generator; off, see below); measures
``audio_roles.role_features`` on every stem and writes, per role, the mean and the spread of each
feature. Spreads are shrunk toward the spread over all stems (``SHRINK``) so one generator's
narrow habits (every demo bass has the same two GM programs) do not become hard rules.
"horns" stems (role "other") are left out: "other" is what the audio says when it is unsure.
Effects are left out too (``FX_PER_SONG = 0``): with them (one noise riser/fall/impact per song)
the broad "fx" class drew hi-hats and cymbals (a closed hat alone read as fx at 60%); real
effects are too varied to be one Gaussian, and a name like "riser" or roles.toml says fx better.
The temperature divides the summed log-likelihoods (the features are not independent, so the
plain sum is over-confident); it is chosen on songs held out of the fit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHRINK = 0.25          # role variance += SHRINK * variance over all stems
SPREAD_FLOOR = 0.05    # of the all-stems spread: no feature is ever trusted more than this
TEMPERATURES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
FX_PER_SONG = 0        # synthetic effects per song (0: the audio never says "fx", see below)
# GM programs (0-based) the demo styles do not use, per role; drum kits (bank 128) likewise.
ALT_PROGRAMS = {"bass": (35, 39, 43, 87), "guitar": (29, 30, 31, 105, 26),
                "keys": (2, 3, 6, 7, 19, 11), "synth": (90, 91, 92, 94, 95, 51, 62),
                "lead": (82, 84, 71, 68, 57, 64, 40, 85), "vocals": (54, 85),
                "backing_vocals": (54, 91)}
ALT_KITS = (8, 16, 24, 25, 32, 40)
# Drum tracks a real session has and the demo's four drum stems do not: GM notes -> role.
# (The demo's "overheads" stem is hats + cymbals + toms; real sessions also have each alone,
# and a stereo kit or loop, which the rules table calls "drums".)
DRUM_PARTS = {"hats": ((42, 44, 46), "drums"), "toms": ((41, 43, 45, 47, 48, 50), "drums"),
              "cymbals": ((49, 51, 52, 53, 55, 57, 59), "overheads"), "kit": (None, "drums")}
DRUM_STEMS = ("kick", "snare", "overheads", "percussion")


def file_rng(seed: int, *where: str) -> np.random.Generator:
    """The random draws (program, kit, level) of one rendered file: the same for a seed whatever
    is already in the work folder's cache."""
    import zlib
    return np.random.default_rng([seed, zlib.crc32("/".join(where).encode())])


def _render(mid, seconds: float, rng: np.random.Generator, out: Path) -> Path | None:
    """Render a MIDI file with fluidsynth to ``out`` (float WAV, a random "recording level")."""
    import subprocess

    from mixstyle.demo.songs import SAMPLE_RATE_HZ, SOUNDFONT
    from mixstyle.io.audio import read_audio, write_audio_atomic
    out.parent.mkdir(parents=True, exist_ok=True)
    mid_path, wav_path = out.with_suffix(".mid"), out.with_suffix(".render.wav")
    mid.save(mid_path)
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r",
                    str(SAMPLE_RATE_HZ), "-O", "float", "-F", str(wav_path), str(SOUNDFONT),
                    str(mid_path)], check=True, capture_output=True)
    audio, sr = read_audio(wav_path)
    wav_path.unlink()
    mid_path.unlink()
    audio = audio[:, : int(seconds * sr)]
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-3:
        return None
    write_audio_atomic(out, audio / peak * 10 ** (rng.uniform(-14, -4) / 20), sr)
    return out


def drum_parts(folder: Path, seconds: float, seed: int, out: Path) -> list[tuple[str, Path]]:
    """(role, file) of the song's hats, toms, cymbals alone and its whole kit, one GM kit each."""
    import mido
    parts = [mido.MidiFile(folder / "source" / f"{s}.mid") for s in DRUM_STEMS
             if (folder / "source" / f"{s}.mid").is_file()]
    found = []
    for name, (notes, role) in DRUM_PARTS.items():
        path = out / f"{name}.wav"
        if not path.is_file():
            rng = file_rng(seed, folder.name, "drums", name)
            kit = int(rng.choice((0,) + ALT_KITS))
            mid = mido.MidiFile(type=1, ticks_per_beat=parts[0].ticks_per_beat)
            mid.tracks.append(mido.MidiTrack(m.copy() for m in parts[0].tracks[0] if m.is_meta))
            drums = mido.MidiTrack([mido.Message("program_change", channel=9, program=kit)])
            mid.tracks.append(drums)
            for part in parts:
                for track in part.tracks[1:]:
                    keep = mido.MidiTrack()
                    carry = 0
                    for m in track:
                        if m.type in ("note_on", "note_off") and notes is not None \
                                and m.note not in notes:
                            carry += m.time
                            continue
                        keep.append(m.copy(time=m.time + carry))
                        carry = 0
                    mid.tracks.append(keep)
            if _render(mid, seconds, rng, path) is None:
                continue
        found.append((role, path))
    return found


def alt_render(folder: Path, stem: str, role: str, program: int | None, seconds: float,
               seed: int, out: Path) -> Path | None:
    """``stem``'s MIDI part of a demo song rendered with another program (or drum kit)."""
    import mido
    if out.is_file():
        return out
    rng = file_rng(seed, folder.name, "alt", stem)
    mid = mido.MidiFile(folder / "source" / f"{stem}.mid")
    if role in ("kick", "snare", "overheads", "drums"):
        kit = int(rng.choice(ALT_KITS))
        for track in mid.tracks:
            if any(getattr(m, "channel", -1) == 9 for m in track):
                track.insert(0, mido.Message("program_change", channel=9, program=kit, time=0))
    else:
        new = int(rng.choice([p for p in ALT_PROGRAMS[role] if p != program]))
        for track in mid.tracks:
            for m in track:
                if m.type == "program_change" and m.channel != 9:
                    m.program = new
    return _render(mid, seconds, rng, out)


def synthetic_fx(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """A riser, a fall or an impact every few bars: filtered noise with a swept band, stereo."""
    from scipy.signal import butter, sosfilt
    n = int(seconds * sr)
    out = np.zeros((2, n))
    t = 0
    kind = rng.choice(["riser", "fall", "impact"])
    while t < n:
        span_s = (0.8, 2.5) if kind == "impact" else (1.0, 4.0)
        length = int(rng.uniform(*span_s) * sr)
        length = min(length, n - t)
        if length < sr // 4:
            break
        noise = rng.standard_normal((2, length))
        lo, hi = rng.uniform(200, 1000), rng.uniform(3000, 12000)
        blocks = 16
        seg = np.zeros_like(noise)
        for b in range(blocks):
            a0, a1 = b * length // blocks, (b + 1) * length // blocks
            frac = b / (blocks - 1)
            centre = lo * (hi / lo) ** (frac if kind == "riser" else 1.0 - frac)
            sos = butter(2, [centre / 1.5, min(centre * 1.5, 0.45 * sr)], "bandpass", fs=sr,
                         output="sos")
            seg[:, a0:a1] = sosfilt(sos, noise[:, a0:a1], axis=1)
        ramp = np.linspace(0.0, 1.0, length)
        env = ramp ** 2 if kind == "riser" else np.exp(-ramp * rng.uniform(3, 8))
        if kind == "impact":
            boom = np.sin(2 * np.pi * rng.uniform(40, 70) * np.arange(length) / sr)
            seg = seg + 3.0 * boom[None] * np.exp(-ramp * 6.0)
        out[:, t:t + length] = seg * env
        t += length + int(rng.uniform(2.0, 6.0) * sr)
    peak = np.max(np.abs(out)) or 1.0
    return (out / peak * 10 ** (rng.uniform(-14, -4) / 20)).astype(np.float32)


Row = tuple[str, str, list[float]]   # (song, role, feature vector)


def dataset(work: Path, songs: int, seed: int, seconds: float) -> list[Row]:
    """(song, role, feature vector) of every demo stem and synthetic effect."""
    import json

    from mixstyle.demo.sessions import _cached_song, song_names
    from mixstyle.demo.styles import STEM_ROLES
    from mixstyle.io.audio import read_audio
    from mixstyle.sessions.audio_roles import AUDIO_FEATURES, role_features
    rows = []
    rng = np.random.default_rng(seed)
    for name, song_seed, style in song_names(songs, seed):
        folder = _cached_song(work / "cache", name, song_seed, style, seconds)
        info = json.loads((folder / "source" / "song.json").read_text())
        for stem in info["stems"]:
            p = folder / "stems" / stem["file"]
            role = STEM_ROLES[p.stem]
            if role == "other":
                continue
            alt = alt_render(folder, p.stem, role, stem["gm_program"], seconds, seed,
                             work / "alt" / name / p.name)
            for path in (p, alt):
                if path is not None:
                    audio, sr = read_audio(path)
                    f = role_features(audio, sr)
                    rows.append((name, role, [f[k] for k in AUDIO_FEATURES]))
        for role, path in drum_parts(folder, seconds, seed, work / "drums" / name):
            audio, sr = read_audio(path)
            f = role_features(audio, sr)
            rows.append((name, role, [f[k] for k in AUDIO_FEATURES]))
        for _ in range(FX_PER_SONG):
            f = role_features(synthetic_fx(rng, seconds, 44100), 44100)
            rows.append((name, "fx", [f[k] for k in AUDIO_FEATURES]))
    return rows


def fit(rows: list[Row]) -> tuple[list[str], np.ndarray, np.ndarray]:
    from mixstyle.sessions.roles import ROLES
    roles = [r for r in ROLES if any(row[1] == r for row in rows)]
    x = np.array([row[2] for row in rows])
    y = np.array([row[1] for row in rows])
    all_var = x.var(axis=0)
    means, stds = [], []
    for r in roles:
        xr = x[y == r]
        var = xr.var(axis=0) + SHRINK * all_var
        means.append(xr.mean(axis=0))
        stds.append(np.maximum(np.sqrt(var), SPREAD_FLOOR * np.sqrt(all_var)))
    return roles, np.array(means), np.array(stds)


def predict(x: np.ndarray, means: np.ndarray, stds: np.ndarray, temperature: float) -> np.ndarray:
    z = (x[:, None, :] - means[None]) / stds[None]
    ll = (-0.5 * np.sum(z ** 2, axis=2) - np.sum(np.log(stds), axis=1)[None]) / temperature
    p = np.exp(ll - ll.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def choose_temperature(rows: list[Row]) -> float:
    """The temperature with the best held-out log-likelihood (songs split in two halves)."""
    songs = sorted({r[0] for r in rows})
    halves = (set(songs[0::2]), set(songs[1::2]))
    best, best_t = -np.inf, 1.0
    for t in TEMPERATURES:
        total = 0.0
        for held in halves:
            roles, means, stds = fit([r for r in rows if r[0] not in held])
            test = [r for r in rows if r[0] in held and r[1] in roles]
            p = predict(np.array([r[2] for r in test]), means, stds, t)
            idx = [roles.index(r[1]) for r in test]
            total += float(np.sum(np.log(p[np.arange(len(test)), idx] + 1e-12)))
        if total > best:
            best, best_t = total, t
    return best_t


def write_model(path: Path, roles: list[str], means: np.ndarray, stds: np.ndarray,
                temperature: float, count: int, args: argparse.Namespace) -> None:
    from mixstyle.sessions.audio_roles import AUDIO_FEATURES

    def rows(a: np.ndarray) -> str:
        def part(vs: np.ndarray) -> str:
            return ", ".join(f"{v:.4f}" for v in vs)
        return "".join(f"    ({part(r[:9])},\n     {part(r[9:])}),\n" for r in a)

    def names(items: tuple[str, ...] | list[str]) -> str:
        return "(\n" + "".join(f"    {x!r},\n" for x in items) + ")"

    text = (
        '"""The typical sound of each role: written by scripts/fit_role_model.py, do not edit.\n\n'
        f"Fitted on {count} stems: {args.songs} demo songs (seed {args.seed}, {args.seconds:g} s"
        "),\ntheir parts again with other GM programs, and drum parts"
        f"{' (+ synthetic effects)' if FX_PER_SONG else ''}.\n"
        "Rows follow ROLES, columns FEATURES (audio_roles.AUDIO_FEATURES).\n"
        '"""\n\n'
        f"FEATURES = {names(AUDIO_FEATURES)}\n"
        f"ROLES = {names(roles)}\n"
        "# equal: no role is assumed likelier than another\n"
        f"PRIORS = ({', '.join('1.0' for _ in roles)})\n"
        f"TEMPERATURE = {temperature!r}\n"
        "MEANS = (\n" + rows(means) + ")\n"
        "STDS = (\n" + rows(stds) + ")\n")
    path.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--songs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--work", default=str(ROOT / "build" / "role_model"))
    ap.add_argument("--out", default=str(ROOT / "mixstyle" / "sessions" / "role_model.py"))
    args = ap.parse_args()
    rows = dataset(Path(args.work), args.songs, args.seed, args.seconds)
    temperature = choose_temperature(rows)
    roles, means, stds = fit(rows)
    write_model(Path(args.out), roles, means, stds, temperature, len(rows), args)
    print(f"{args.out}: {len(rows)} stems, roles {', '.join(roles)}, temperature {temperature}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
