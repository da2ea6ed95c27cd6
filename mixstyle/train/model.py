"""The profile's network: stem features + roles + song context -> normalised console parameters.

Each track is a token (its standardised features plus a role embedding); a small transformer
encoder lets every track see the others (a track's balance depends on the rest of the song); a
learned "master" token reads the whole song. Heads give the track parameters (``TRACK_PARAMS``
except the input trim, which is gain staging, and the fader) plus the track's loudness in the mix
(``level_lu``), and the master parameters plus the mix bus loudness (``bus_lufs``), each in
[0, 1] of its normalised range. The output biases start at the training set's mean setting, so with
little data the model falls back to the producer's average and learns deviations from content.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from dsp.params import MASTER_PARAMS, TRACK_PARAMS
from mixstyle.train.balance import BUS, LEVEL, PAN_SIDE
from mixstyle.train.features import N_FEATURES, N_ROLES

# The console parameters the network predicts directly. The input trim is gain staging and the
# fader follows from the track's predicted loudness in the mix (mixstyle.train.balance), so the
# network predicts ``level_lu`` per track and ``bus_lufs`` for the song instead. Its ``pan``
# output is the pan's width (|pan|); ``pan_side`` says whether the side is a habit
# (mixstyle.train.balance.assign_sides).
PREDICTED_TRACK = tuple(p for p in TRACK_PARAMS
                        if p.name not in ("input_gain_db", "output_gain_db"))
PREDICTED_MASTER = tuple(MASTER_PARAMS)
TRACK_TARGETS = PREDICTED_TRACK + (LEVEL, PAN_SIDE)
I_PAN = [p.name for p in PREDICTED_TRACK].index("pan")
I_LEVEL, I_SIDE = len(PREDICTED_TRACK), len(PREDICTED_TRACK) + 1
MASTER_TARGETS = PREDICTED_MASTER + (BUS,)


@dataclass(frozen=True)
class ModelConfig:
    n_features: int = N_FEATURES
    n_roles: int = N_ROLES
    width: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class MixNet(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.config = config
        d = config.width
        self.register_buffer("feat_mean", torch.zeros(config.n_features))
        self.register_buffer("feat_std", torch.ones(config.n_features))
        self.track_in = nn.Sequential(nn.Linear(config.n_features, d), nn.GELU(), nn.Linear(d, d))
        self.role = nn.Embedding(config.n_roles, d)
        self.master_in = nn.Sequential(nn.Linear(config.n_features, d), nn.GELU(),
                                       nn.Linear(d, d))
        self.master_token = nn.Parameter(torch.zeros(d))
        layer = nn.TransformerEncoderLayer(d, config.heads, dim_feedforward=2 * d,
                                           dropout=config.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.track_head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(),
                                        nn.Linear(d, len(TRACK_TARGETS)))
        self.master_head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(),
                                         nn.Linear(d, len(MASTER_TARGETS)))
        for head in (self.track_head, self.master_head):
            nn.init.zeros_(head[-1].weight)
            nn.init.zeros_(head[-1].bias)

    def set_output_bias(self, track_u: torch.Tensor, master_u: torch.Tensor) -> None:
        """Start the heads at a mean setting (normalised, in (0, 1))."""
        with torch.no_grad():
            self.track_head[-1].bias.copy_(torch.logit(track_u.clamp(0.02, 0.98)))
            self.master_head[-1].bias.copy_(torch.logit(master_u.clamp(0.02, 0.98)))

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        with torch.no_grad():
            self.feat_mean.copy_(mean)
            self.feat_std.copy_(std.clamp_min(1e-3))

    def forward(self, feats: torch.Tensor, roles: torch.Tensor, mask: torch.Tensor,
                song_feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, N, F), roles (B, N) long, mask (B, N) True where a track exists,
        song_feats (B, F) (features of the plain sum). Returns track_u (B, N, len(TRACK_TARGETS)),
        master_u (B, len(MASTER_TARGETS)).
        """
        f = (feats - self.feat_mean) / self.feat_std
        s = (song_feats - self.feat_mean) / self.feat_std
        tokens = self.track_in(f) + self.role(roles)
        master = (self.master_in(s) + self.master_token)[:, None, :]
        seq = torch.cat([master, tokens], dim=1)
        pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
        h = self.encoder(seq, src_key_padding_mask=pad)
        track_u = torch.sigmoid(self.track_head(h[:, 1:]))
        master_u = torch.sigmoid(self.master_head(h[:, 0]))
        return track_u, master_u


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
