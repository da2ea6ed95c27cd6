"""The model card of a profile: what it was trained on (every file with its SHA-256), how well
each song was fitted, the held-out score and where the fits ran -- as JSON (``model_card``) and
Markdown for people (``card_markdown``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict

from mixstyle.train.config import LearnConfig
from mixstyle.train.loudness import LoudnessHabit
from mixstyle.train.records import SongRecord


def model_card(records: dict[str, SongRecord], names: list[str], held: list[str],
               held_score: dict | None, config: LearnConfig, n_params: int,
               scheduler: str | None = None, loudness_habit: dict | None = None) -> dict:
    privacy = "trained only on the files listed here, locally; no data left this machine" \
        if scheduler is None else \
        (f"trained only on the files listed here; the song fits of this run were made on the "
         f"Dask cluster at {scheduler} (its workers read these files), the training here")
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "trained_on": [{"song": n, "tracks": [
            {"name": t, "role": r} for t, r in zip(records[n].track_names, records[n].roles)],
            "files": [asdict(f) for f in records[n].files],
            "fit_quality": records[n].quality} for n in names],
        "held_out_songs": held,
        "held_out_score": held_score,
        "model_parameters": n_params,
        "seed": config.train.seed,
        "epochs": config.train.epochs,
        "audio_epochs": config.train.audio_epochs,
        "average_passes": config.train.average_passes,
        "privacy": privacy,
        "loudness_habit": loudness_habit,
    }


def card_markdown(card: dict) -> str:
    lines = ["# mixstyle profile: model card", "",
             f"Created {card['created']}. {card['model_parameters']:,} network parameters, "
             f"seed {card['seed']}.", "", card["privacy"] + ".", "",
             "## Training songs and fit quality", "",
             "Fit quality: how well the recovered console setting reproduces the producer's mix "
             "on the fitted excerpt (error in dB re the mix, band error in dB).", "",
             "| song | tracks | fit error (dB) | band error (dB) |", "|---|---|---|---|"]
    for s in card["trained_on"]:
        q = s["fit_quality"]
        lines.append(f"| {s['song']} | {len(s['tracks'])} | {q.get('error_db')} | "
                     f"{q.get('band_error_db')} |")
    habit = LoudnessHabit.from_dict(card.get("loudness_habit"))
    lines += ["", "## How they set the level", "",
              ("The producer " + habit.describe() + ".") if habit is not None else
              "Too few songs to read the producer's loudness habit (needs at least 3)."]
    lines += ["", "## Held-out score", ""]
    hs = card["held_out_score"]
    if hs:
        lines.append(f"Songs kept out of training: {', '.join(card['held_out_songs'])}.")
        lines.append("")
        lines.append("| metric | learned | plain sum |")
        lines.append("|---|---|---|")
        for k, v in hs["learned"].items():
            lines.append(f"| {k} | {v:.3f} | {hs['plain_sum'][k]:.3f} |")
        if "style_strength" in hs:
            lines += ["", f"The strips keep {hs['style_strength']:.0%} of the learned style: of "
                      f"the shares tried on these songs (band error "
                      + ", ".join(f"{float(k):.0%}: {v} dB" for k, v in
                                  hs.get("band_error_by_style_strength", {}).items())
                      + ") it came closest to the producer's mixes; the level habit is whole."]
    else:
        lines.append("Too few songs for a held-out score (needs at least 4).")
    lines += ["", "## Files", "", "| file | SHA-256 | seconds |", "|---|---|---|"]
    for s in card["trained_on"]:
        for f in s["files"]:
            lines.append(f"| {f['path']} | `{f['sha256'][:16]}…` | {f['seconds']} |")
    return "\n".join(lines) + "\n"
