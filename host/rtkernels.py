"""Small numba kernels for the audio callback's studio features (no allocation, no checks).

Track gains for mute/solo (ramped over one block so a mute never clicks), a finite check for
insert outputs, the record tap's copy and the A/B "mix" source's copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def ramp_track_gains(x, now, target):
    """x (tracks, channels, n) *= a ramp from now[t] to target[t] over the block; now = target.

    Returns True when every gain is (now) exactly 1, i.e. the next block needs no call."""
    unity = True
    n = x.shape[2]
    for t in range(x.shape[0]):
        g0 = now[t]
        g1 = target[t]
        if g0 == g1:
            if g0 != 1.0:
                unity = False
                for c in range(x.shape[1]):
                    for i in range(n):
                        x[t, c, i] *= g1
            continue
        step = (g1 - g0) / n
        for c in range(x.shape[1]):
            for i in range(n):
                x[t, c, i] *= g0 + step * (i + 1)
        now[t] = g1
        if g1 != 1.0:
            unity = False
    return unity


@njit(cache=True)
def all_finite(x):
    """True when every sample of x (channels, n) is finite."""
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            v = x[c, i]
            if not (v - v == 0.0):  # NaN and inf give NaN here
                return False
    return True


@njit(cache=True)
def copy_block(src, dst):
    """dst[:, :] = src[:, :] for two (channels, n) arrays of the same shape."""
    for c in range(src.shape[0]):
        for i in range(src.shape[1]):
            dst[c, i] = src[c, i]


@njit(cache=True)
def record_block(src, buf, pos):
    """Append block src (channels, n) to buf (channels, total) at pos[0]; True when buf is full."""
    total = buf.shape[1]
    k = pos[0]
    n = min(src.shape[1], total - k)
    for c in range(src.shape[0]):
        for i in range(n):
            buf[c, k + i] = src[c, i]
    pos[0] = k + n
    return pos[0] >= total


@njit(cache=True)
def play_source(audio, start, out):
    """out = audio[:, start:start+n] (mono duplicated; zeros outside the audio)."""
    total = audio.shape[1]
    for c in range(out.shape[0]):
        src = c if c < audio.shape[0] else audio.shape[0] - 1
        for i in range(out.shape[1]):
            j = start + i
            out[c, i] = audio[src, j] if 0 <= j < total else 0.0


@njit(cache=True)
def scale_block(x, gain):
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            x[c, i] *= gain


def warm_up(n_tracks: int, block: int) -> None:
    """Compile every kernel now (outside the callback)."""
    x = np.zeros((n_tracks, 2, block), dtype=np.float32)
    g = np.ones(n_tracks, dtype=np.float32)
    ramp_track_gains(x, g, g.copy())
    b = np.zeros((2, block), dtype=np.float32)
    all_finite(b)
    copy_block(b, b.copy())
    copy_block(b, np.zeros((block, 2), dtype=np.float32).T)        # an interleaved output
    copy_block(b, np.zeros((2, 2 * block), dtype=np.float32)[:, ::2])  # any strided view
    record_block(b, np.zeros((2, 2 * block), dtype=np.float32), np.zeros(1, dtype=np.int64))
    play_source(b, 0, b.copy())
    scale_block(b, 1.0)
