"""The model card of a profile: what it was trained on (every file with its SHA-256, and what the
loader fixed in them), how well each song was fitted, which songs were the producer's own
corrected settings (and where such a setting overrode a mix), the held-out score and where the
fits ran -- as JSON (``model_card``) and Markdown for people (``card_markdown``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict

from mixstyle.train.config import LearnConfig
from mixstyle.train.loudness import LoudnessHabit
from mixstyle.train.corrections import describe
from mixstyle.train.records import SongRecord


def model_card(records: dict[str, SongRecord], names: list[str], held: list[str],
               held_score: dict | None, config: LearnConfig, n_params: int,
               scheduler: str | None = None, loudness_habit: dict | None = None,
               corrections: dict | None = None, kernels: dict | None = None) -> dict:
    privacy = "trained only on the files listed here, locally; no data left this machine" \
        if scheduler is None else \
        (f"trained only on the files listed here; the song fits of this run were made on the "
         f"Dask cluster at {scheduler} (its workers read these files), the training here")
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "trained_on": [{"song": n, "tracks": [
            {"name": t, "role": r} for t, r in zip(records[n].track_names, records[n].roles)],
            "files": [asdict(f) for f in records[n].files],
            "source": records[n].source,
            "mix_overridden": records[n].mix_overridden,
            "load_warnings": records[n].load_warnings,
            "fit_quality": records[n].quality} for n in names],
        "training_data": training_data(records, names, corrections),
        "held_out_songs": held,
        "held_out_score": held_score,
        "model_parameters": n_params,
        "seed": config.train.seed,
        "epochs": config.train.epochs,
        "audio_epochs": config.train.audio_epochs,
        "average_passes": config.train.average_passes,
        "privacy": privacy,
        "loudness_habit": loudness_habit,
        "kernels": kernels,
    }


def training_data(records: dict[str, SongRecord], names: list[str],
                  corrections: dict | None = None) -> dict:
    """The kinds of training data: songs fitted to the producer's mix, and corrected songs
    (their own setting.json), with the songs whose setting overrode a mix and what the
    corrections taught (``corrections``: ``mixstyle.train.corrections.correction_offsets``;
    None where the network trained on them, having no fitted song)."""
    fitted = [n for n in names if records[n].source != "correction"]
    corrected = [n for n in names if records[n].source == "correction"]
    return {"fitted_songs": len(fitted),
            "corrected_songs": len(corrected), "corrected": corrected,
            "setting_overrode_mix": {n: records[n].mix_overridden for n in corrected
                                     if records[n].mix_overridden},
            "corrections_teach": describe(corrections) if corrections else
            (["the network trained on them (no fitted songs)"] if corrected else [])}


def _corrections_markdown(card: dict) -> list[str]:
    data = card.get("training_data") or {}
    if not data.get("corrected_songs"):
        return []
    lines = ["", "## Corrected songs", "",
             f"{data['corrected_songs']} of the training songs are the producer's own console "
             f"settings (setting.json, e.g. kept in the studio), learned as they are (no fit): "
             + ", ".join(data["corrected"]) + "."]
    for song, mix in sorted(data.get("setting_overrode_mix", {}).items()):
        lines.append(f"- {song}: the setting overrode the mix '{mix}' (the mix was not learned).")
    taught = data.get("corrections_teach") or []
    if taught:
        lines += ["", "What the corrections changed in the style learned from the mixes (per "
                  "role, the median of the corrected tracks against the network's prediction, "
                  "n/(n+1) of it for n corrected songs):", ""]
        lines += [f"- {t}" for t in taught]
    return lines


def _kernels_markdown(card: dict) -> list[str]:
    """One line: the numeric kernels the learning ran on (dsp/kernels.py)."""
    k = (card.get("kernels") or {}).get("learn")
    if not k:
        return []
    how = "pinned: a CPU's own kernel choice does not change the profile" if k["pinned"] else \
        "not pinned: another CPU may learn a slightly different profile"
    return [f"Numeric kernels: {k['level']} ({how}).", ""]


def card_markdown(card: dict) -> str:
    lines = ["# mixstyle profile: model card", "",
             f"Created {card['created']}. {card['model_parameters']:,} network parameters, "
             f"seed {card['seed']}.", "", card["privacy"] + ".", "",
             *_kernels_markdown(card),
             "## Training songs and fit quality", "",
             "Fit quality: how well the recovered console setting reproduces the producer's mix "
             "on the fitted excerpt (error in dB re the mix, band error in dB).", "",
             "| song | tracks | fit error (dB) | band error (dB) |", "|---|---|---|---|"]
    for s in card["trained_on"]:
        q = s["fit_quality"]
        if s.get("source") == "correction":
            lines.append(f"| {s['song']} | {len(s['tracks'])} | correction: no fit | - |")
            continue
        lines.append(f"| {s['song']} | {len(s['tracks'])} | {q.get('error_db')} | "
                     f"{q.get('band_error_db')} |")
    read = [w for s in card["trained_on"] for w in s.get("load_warnings") or []]
    if read:
        lines += ["", "## How the files were read", "",
                  "What the loader fixed before fitting (each song's warnings):", ""]
        lines += [f"- {w}" for w in read]
    lines += _corrections_markdown(card)
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
        if "balance_strength" in hs:
            lines += ["", f"The balance keeps {hs['balance_strength']:.0%} of the learned "
                      f"levels, the rest is the plain sum's own balance: of the shares tried on "
                      f"these songs (band error at the producer's loudness "
                      + ", ".join(f"{float(k):.0%}: {v} dB" for k, v in
                                  hs.get("band_error_by_balance_strength", {}).items())
                      + ") " + _evidence_words(hs["balance_strength"]) + "."]
        if "style_strength" in hs:
            lines += ["", f"The strips keep {hs['style_strength']:.0%} of the learned style: of "
                      f"the shares tried on these songs (band error"
                      + (" at the producer's loudness " if "balance_strength" in hs else " ")
                      + ", ".join(f"{float(k):.0%}: {v} dB" for k, v in
                                  hs.get("band_error_by_style_strength", {}).items())
                      + ") " + _evidence_words(hs["style_strength"])
                      + "; the level habit is whole."]
        if "pan_strength" in hs:
            lines += ["", f"The pans keep {hs['pan_strength']:.0%} of the learned pans: of the "
                      f"shares tried (width error "
                      + ", ".join(f"{float(k):.0%}: {v} dB" for k, v in
                                  hs.get("width_error_by_pan_strength", {}).items())
                      + ") it came closest to the producer's stereo image."]
        if "loudness_source" in hs:
            by = hs.get("loudness_error_by_source", {})
            lines += ["", "The loudness of a new mix is "
                      + ("that of the plain sum of its stems plus the producer's usual offset"
                         if hs["loudness_source"] == "sum" else "the network's prediction")
                      + " (loudness error on these songs: "
                      + ", ".join(f"{k} {v} LU" for k, v in by.items()) + ")."]
    else:
        lines.append("Too few songs for a held-out score (needs at least 4).")
    lines += ["", "## Files", "", "| file | SHA-256 | seconds |", "|---|---|---|"]
    for s in card["trained_on"]:
        for f in s["files"]:
            seconds = "setting" if str(f["path"]).endswith(".json") else f["seconds"]
            lines.append(f"| {f['path']} | `{f['sha256'][:16]}…` | {seconds} |")
    return "\n".join(lines) + "\n"


def _evidence_words(share: float) -> str:
    """Why a share was kept (``mixstyle.evaluate.held_out.EVIDENCE_SE``)."""
    if share > 0:
        return "it came closest to the producer's mixes"
    return ("no share of the style beat none by more than the songs' own spread (one standard "
            "error of the per-song difference), so none is kept")
