"""A profile is a folder: the network's weights, its config, a model card and the song records.

    PROFILE/
      profile.json     format, version, model config, feature names, predicted parameters,
                       a hash of the parameter table it was trained against
      weights.npz      the network's tensors (numpy, loaded with allow_pickle=False: no code runs)
      model_card.json  every training file with its SHA-256 and duration, the date, fit quality
      model_card.md    per song, the held-out score -- the same, for people
      songs/<song>.json  the training record of each song (features + recovered setting)

``save_profile`` / ``load_profile`` (-> ``predict.Profile``), the weights as numpy arrays.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dsp.files import write_bytes_atomic
from dsp.params import TABLE
from mixstyle.errors import ProfileError
from mixstyle.io.audio import write_text_atomic
from mixstyle.profile.predict import Profile
from mixstyle.train.features import FEATURE_NAMES
from mixstyle.train.model import MASTER_TARGETS, TRACK_TARGETS, MixNet, ModelConfig

FORMAT = "mixstyle.profile"
VERSION = 2   # 2: the network predicts track levels (LU re the mix bus), not faders


def table_hash() -> str:
    text = json.dumps([(p.key, p.min, p.max, p.scale) for p in TABLE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_weights(model: MixNet, path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    write_bytes_atomic(path, buf.getvalue())


def load_weights(model: MixNet, path: Path) -> None:
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: torch.from_numpy(data[k]) for k in data.files}
        model.load_state_dict(state, strict=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ProfileError(f"profile weights {path}: cannot be loaded ({e})") from None


def save_profile(folder: Path, model: MixNet, meta: dict[str, Any], card: dict[str, Any],
                 card_markdown: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta = dict(meta, format=FORMAT, version=VERSION, table_hash=table_hash(),
                model_config=model.config.to_dict(), feature_names=list(FEATURE_NAMES),
                predicted_track=[p.name for p in TRACK_TARGETS],
                predicted_master=[p.name for p in MASTER_TARGETS])
    save_weights(model, folder / "weights.npz")
    write_text_atomic(folder / "model_card.json", json.dumps(card, indent=2))
    write_text_atomic(folder / "model_card.md", card_markdown)
    write_text_atomic(folder / "profile.json", json.dumps(meta, indent=2))


def load_profile(folder: str | Path) -> Profile:
    folder = Path(folder)
    meta_path = folder / "profile.json"
    if not meta_path.is_file():
        raise ProfileError(f"{folder}: not a mixstyle profile (no profile.json); make one with "
                           f"'mixstyle learn SESSIONS --out {folder}'")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ProfileError(f"{meta_path}: unreadable ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ProfileError(f"{meta_path}: format {meta.get('format')!r} version "
                           f"{meta.get('version')!r}; this mixstyle reads {FORMAT} v{VERSION}")
    if meta.get("table_hash") != table_hash():
        raise ProfileError(f"{meta_path}: trained against another parameter table; "
                           f"re-run 'mixstyle learn' to update it")
    if meta.get("feature_names") != list(FEATURE_NAMES):
        raise ProfileError(f"{meta_path}: trained on other features; re-run 'mixstyle learn'")
    try:
        config = ModelConfig(**meta["model_config"])
    except (KeyError, TypeError) as e:
        raise ProfileError(f"{meta_path}: bad model_config ({e})") from None
    model = MixNet(config)
    load_weights(model, folder / "weights.npz")
    model.eval()
    return Profile(model, meta, folder)

