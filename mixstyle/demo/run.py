"""``make demo`` / ``mixstyle demo``: make demo songs, mix them with a profile, show the score.

The demo songs are new (seeded) songs that the shipped profile never heard, mixed by the demo
producer the profile was trained on, so the evaluate table compares mixstyle's mixes of them
with that producer's own mixes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dsp.params import dumps
from dsp.render import render
from mixstyle.io.audio import write_audio_atomic, write_text_atomic
from mixstyle.demo.sessions import make_sessions
from mixstyle.evaluate.score import format_table, song_scores, summarise
from mixstyle.profile.store import load_profile
from mixstyle.sessions.load import load_song


def run_demo(out: Path, profile_dir: Path, songs: int = 3, seed: int = 1000,
             seconds: float = 20.0) -> int:
    profile = load_profile(profile_dir)
    producer = profile.meta.get("demo_producer", "ava")
    print(f"making {songs} demo songs mixed by demo producer {producer!r} in {out}/sessions ...",
          file=sys.stderr)
    folders = make_sessions(out / "sessions", producer, songs, seed, seconds=seconds,
                            cache_dir=out / "cache")
    per = {}
    for folder in folders:
        song = load_song(folder)
        stems = [(s.name, s.role, s.audio) for s in song.stems]
        setting = profile.predict(stems, song.sample_rate)
        result = render(np.stack([s.audio for s in song.stems]), song.sample_rate, setting)
        mix_path = out / "mixes" / f"{song.name}.wav"
        mix_path.parent.mkdir(parents=True, exist_ok=True)
        write_audio_atomic(mix_path, result.audio, song.sample_rate)
        write_text_atomic(mix_path.with_suffix(".params.json"), dumps(setting))
        per[song.name] = song_scores(song, setting)
        print(f"  {mix_path}: {result.loudness_lufs:.1f} LUFS, {result.true_peak_dbtp:.1f} dBTP",
              file=sys.stderr)
    summary = summarise(per)
    print(format_table(summary, f"profile {profile_dir} vs demo producer {producer!r} "
                                f"on {len(per)} new songs"))
    return 0
