"""Train the profile's network on the recovered settings, then through the console on the audio.

Phase 1 (parameters): weighted L1 between predicted and recovered normalised settings, with track
dropout (a random track or two hidden from a song) so the model does not lean on one fixed band
line-up. Phase 2 (audio): each song's excerpt is rendered through the differentiable twin with
the predicted setting and compared with the producer's mix (level-matched MR-STFT + 0.4 x band
error in dB: the band term is what a producer hears as tone and balance, and weighting it up from
0.1 lowered both the held-out band error and MR-STFT); the parameter loss stays on as an anchor.
The final weights are the mean of the weights after each of the last ``average_passes`` passes:
one pass's weights follow the last few songs it saw, and the held-out score moved by up to 16
points between trainings on nearly identical fits; the mean moved much less and scored higher
(ava, ben, cleo x two seeds: 66% mean closure -> 71%). Full-batch, deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from dsp.params import TRACK, spec
from mixstyle.twin import console as twin, losses
from mixstyle.train.balance import LEVEL, PAN_SIDE, assign_sides, torch_loudness
from mixstyle.train.loudness import with_habit
from mixstyle.train.records import Batch, SongRecord, collate
from mixstyle.train.model import I_LEVEL, I_SIDE, PREDICTED_TRACK, MixNet, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 400           # parameter-phase steps (full batch)
    # the audio phase: passes over the songs (0 = skip), each on an excerpt this long. Twice the
    # passes over half the excerpt of before (10 x 3 s) cost the same and fit the producer's
    # tone better on training and held-out songs alike (docs/RESULTS.md, 2026-12-06)
    audio_epochs: int = 20
    audio_seconds: float = 1.5
    lr: float = 3e-3
    audio_lr: float = 2e-3      # learning rate of the audio phase
    band_weight: float = 0.4    # audio loss: MR-STFT + band_weight * band level error (dB)
    weight_decay: float = 1e-3
    average_passes: int = 5     # final weights: the mean of those after each of the last N passes
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.audio_epochs < 0 or self.average_passes < 0:
            raise ValueError("TrainConfig.epochs must be >= 1, audio_epochs and average_passes "
                             ">= 0")


@dataclass(frozen=True)
class SongAudio:
    """A song's staged stems and mix excerpt for the audio phase."""
    stems: np.ndarray   # (N, 2, T) float32, already trimmed by the input gain (gain staging)
    mix: np.ndarray     # (2, T)
    sample_rate: float
    # per track: loudness of the whole song minus that of the excerpt through the fitted strip
    # (levels are learned on whole songs, the audio phase hears an excerpt)
    loudness_offsets: np.ndarray | None = None


_GAIN = spec(TRACK, "output_gain_db")


def param_loss(model: MixNet, batch: Batch, drop: torch.Tensor | None = None) -> torch.Tensor:
    mask = batch.mask if drop is None else batch.mask & ~drop
    tu, mu = model(batch.feats, batch.roles, mask, batch.song_feats)
    w = batch.track_w * mask[..., None]
    err = (tu - batch.track_u).abs()
    # the side habit is a mean (how consistent), not a majority vote: squared error
    err = torch.cat([err[..., :I_SIDE], 2.0 * err[..., I_SIDE:I_SIDE + 1].pow(2),
                     err[..., I_SIDE + 1:]], dim=-1)
    track = (w * err).sum() / w.sum().clamp_min(1e-6)
    master = (batch.master_w * (mu - batch.master_u).abs()).sum() / \
        batch.master_w.sum().clamp_min(1e-6)
    return track + 0.5 * master


def _random_drop(batch: Batch, gen: torch.Generator) -> torch.Tensor:
    """Hide up to two tracks per song (never leaving fewer than two)."""
    drop = torch.zeros_like(batch.mask)
    counts = batch.mask.sum(dim=1)
    for i in range(batch.mask.shape[0]):
        k = int(torch.randint(0, 3, (1,), generator=gen))
        k = min(k, int(counts[i]) - 2)
        if k > 0:
            idx = torch.randperm(int(counts[i]), generator=gen)[:k]
            drop[i, idx] = True
    return drop


def _init_model(records: Sequence[SongRecord], batch: Batch, config: ModelConfig) -> MixNet:
    model = MixNet(config)
    flat = batch.feats[batch.mask]
    allf = torch.cat([flat, batch.song_feats])
    model.set_feature_stats(allf.mean(dim=0), allf.std(dim=0))
    w = batch.track_w * batch.mask[..., None]
    mean_t = (w * batch.track_u).sum(dim=(0, 1)) / w.sum(dim=(0, 1)).clamp_min(1e-6)
    mean_t = torch.where(w.sum(dim=(0, 1)) > 0, mean_t, torch.full_like(mean_t, 0.5))
    mean_m = (batch.master_w * batch.master_u).sum(0) / batch.master_w.sum(0).clamp_min(1e-6)
    mean_m = torch.where(batch.master_w.sum(0) > 0, mean_m, torch.full_like(mean_m, 0.5))
    model.set_output_bias(mean_t, mean_m)
    return model


def _track_dict(u: torch.Tensor) -> dict[str, torch.Tensor]:
    """(N, P) normalised -> physical name -> (N,); input trim and fader 0 (stems come staged,
    the fader follows from the predicted level)."""
    out = {p.name: p.denormalise(u[:, j]).clamp(p.min, p.max)
           for j, p in enumerate(PREDICTED_TRACK)}
    out["input_gain_db"] = torch.zeros(u.shape[0])
    out["output_gain_db"] = torch.zeros(u.shape[0])
    return out


def render_levels(stems: torch.Tensor, sample_rate: float, u: torch.Tensor,
                  offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The twin's mix bus for staged ``stems (N, 2, T)`` and predicted targets ``u (N, P+1)``:
    each strip at fader 0 dB, then the fader that puts it at its predicted level (the bus level
    is a common offset, left out). Returns (2, T)."""
    params = _track_dict(u)
    level = LEVEL.denormalise(u[:, I_LEVEL].detach())
    sides = assign_sides(params["pan"].detach().tolist(),
                         PAN_SIDE.denormalise(u[:, I_SIDE].detach()).tolist(), level.tolist())
    params["pan"] = params["pan"].abs() * torch.tensor([1.0 if p >= 0 else -1.0 for p in sides])
    y = twin.strip(stems, sample_rate, params)
    loud = torch_loudness(y, sample_rate)
    if offsets is not None:
        loud = loud + offsets
    # the levels themselves are learned from the measured levels only (the parameter loss):
    # through a short excerpt the spectral loss trades balance for tone and drifts them
    gain = (level - loud).clamp(_GAIN.min, _GAIN.max)
    return (y * torch.pow(10.0, gain / 20.0).to(y.dtype)[:, None, None]).sum(dim=0)


def audio_loss(model: MixNet, batch: Batch, i: int, song: SongAudio,
               band_weight: float, ref: losses.Reference | None = None) -> torch.Tensor:
    """The audio phase's loss of song ``i``; ``ref``: its ``reference`` (made here if not
    given; training keeps one per song)."""
    n = int(batch.mask[i].sum())
    tu, _ = model(batch.feats[i:i + 1, :n], batch.roles[i:i + 1, :n], batch.mask[i:i + 1, :n],
                  batch.song_feats[i:i + 1])
    offsets = None if song.loudness_offsets is None else torch.from_numpy(song.loudness_offsets).to(torch.float32)
    y = render_levels(torch.from_numpy(song.stems), song.sample_rate, tu[0], offsets)[None]
    mix = torch.from_numpy(song.mix)[None]
    y = y * (mix.pow(2).mean().sqrt() / (y.pow(2).mean().sqrt() + 1e-9))
    ref = ref if ref is not None else reference(song)
    y = _mid_side(y)
    return losses.mrstft(y, ref) + band_weight * losses.band_db(y, ref, song.sample_rate)


def reference(song: SongAudio) -> losses.Reference:
    """The producer's mix as the audio phase compares with it: mid and side, not left and
    right (which side a part sits on is not the style)."""
    return losses.Reference(_mid_side(torch.from_numpy(song.mix)[None]))


def _mid_side(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([0.5 * (x[:, 0] + x[:, 1]), 0.5 * (x[:, 0] - x[:, 1])], dim=1)


def train(records: Sequence[SongRecord], config: TrainConfig = TrainConfig(),
          audio: dict[str, SongAudio] | None = None, model_config: ModelConfig = ModelConfig(),
          progress: Callable[[str, int, int], None] | None = None
          ) -> tuple[MixNet, dict[str, list[float]]]:
    """Train on ``records``; ``audio`` (song name -> excerpt) enables the audio phase."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    records = with_habit(records)
    batch = collate(records)
    model = _init_model(records, batch, model_config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs)
    history: dict[str, list[float]] = {"param": [], "audio": []}
    model.train()
    for step in range(config.epochs):
        opt.zero_grad()
        loss = param_loss(model, batch, _random_drop(batch, gen))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        history["param"].append(loss.item())
        if progress:
            progress("parameters", step + 1, config.epochs)
    songs = [i for i, r in enumerate(records) if audio and r.song in audio]
    if songs and config.audio_epochs:
        opt = torch.optim.AdamW(model.parameters(), lr=config.audio_lr,
                                weight_decay=config.weight_decay)
        total = config.audio_epochs * len(songs)
        done = 0
        snapshots: list[dict[str, torch.Tensor]] = []
        # each mix's spectra, computed once before the passes
        refs = {i: reference(audio[records[i].song]) for i in songs}  # type: ignore[index]
        for epoch in range(config.audio_epochs):
            order = torch.randperm(len(songs), generator=gen).tolist()
            for k in order:
                i = songs[k]
                opt.zero_grad()
                a = audio_loss(model, batch, i, audio[records[i].song],  # type: ignore[index]
                               config.band_weight, refs[i])
                loss = a + param_loss(model, batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                history["audio"].append(a.item())
                done += 1
                if progress:
                    progress("audio", done, total)
            if epoch >= config.audio_epochs - config.average_passes:
                snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if len(snapshots) > 1:
            model.load_state_dict({k: torch.stack([s[k] for s in snapshots]).mean(dim=0)
                                   for k in snapshots[0]})
    model.eval()
    return model, history
