"""The producer's sessions: load -> check -> align -> roles, one song folder at a time.

Layout::

    SESSIONS/<song>/stems/<track>.<wav|flac|aiff|aif|mp3|ogg>
    SESSIONS/<song>/mix.<ext>          their final mix (required, unless setting.json)
    SESSIONS/<song>/master.<ext>       their master of that mix (optional)
    SESSIONS/<song>/roles.toml         track = "role" overrides (optional)
    SESSIONS/<song>/setting.json       their own console setting for the song, a correction
                                       (``mixstyle.sessions.corrections``; wins over the mix)

``load_stems`` reads a folder of new stems (files directly inside, optional roles.toml) for
``mixstyle mix``. Files are scanned once in chunks (errors, clipping, loudness per 0.1 s), then
only the needed region is decoded, resampled to ``sample_rate``, made stereo and padded to one
length. The problem table and its sentences live in ``check``.
"""

from __future__ import annotations

import warnings as _warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from dsp.errors import MixstyleError, ParameterError, SessionError
from dsp.validate import check_range, check_sample_rate
from mixstyle.sessions import check as chk
from mixstyle.io.audio import AUDIO_EXTENSIONS, is_audio_path
from mixstyle.sessions.roles import ROLES_FILE, load_roles_override, resolve_role
from mixstyle.sessions.align import (FIT_WINDOW_SECONDS, STEM_OFFSET_SEARCH_SECONDS,
                                    loudest_start, loudest_window, read_aligned, read_region,
                                    shift_with_margin, stem_offset)
from mixstyle.sessions.check import FileScan, Issue

_EXTS = ", ".join(AUDIO_EXTENSIONS)
SETTING_FILE = "setting.json"


class SessionWarning(UserWarning):
    """Category of the warnings ``load_stems`` emits when no ``on_warning`` is given."""


@dataclass(frozen=True)
class Stem:
    """One track: ``name`` is the file name without extension; ``audio`` is (2, samples)."""

    name: str
    path: Path
    role: str
    audio: np.ndarray


@dataclass(frozen=True)
class Song:
    """One past session, aligned: every stem, the mix and the master share one timeline.

    ``offset_samples`` is how late the mix file started against the stems (already removed);
    ``start_seconds`` is where the excerpt begins in the files.
    """

    name: str
    folder: Path
    sample_rate: float
    stems: tuple[Stem, ...]
    mix: np.ndarray
    master: np.ndarray | None
    offset_samples: int
    warnings: tuple[Issue, ...]
    start_seconds: float = 0.0

    def __post_init__(self) -> None:
        shape = self.mix.shape
        bad = [s.name for s in self.stems if s.audio.shape != shape]
        if bad or (self.master is not None and self.master.shape != shape):
            raise SessionError(f"song '{self.name}': stems {bad} or master do not match the "
                               f"mix shape {shape}")

    @property
    def num_samples(self) -> int:
        return int(self.mix.shape[1])

    def stem_array(self) -> np.ndarray:
        """All stems stacked as float32 (stems, 2, samples)."""
        return np.stack([s.audio for s in self.stems])


@dataclass(frozen=True)
class LoadReport:
    """Songs that loaded (sorted by name) and ``(song name, message)`` for those that did not."""

    songs: tuple[Song, ...]
    errors: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Place:
    label: str   # "song 'ballad'" or "stems folder '/x/new'"
    joiner: str  # "of" or "in"

    def file(self, kind: str, path: Path) -> str:
        return f"{kind} '{path.name}' {self.joiner} {self.label}"


@dataclass
class _Loaded:
    sample_rate: float
    stems: list[Stem]
    mix: np.ndarray | None
    master: np.ndarray | None
    offset_samples: int
    start_seconds: float
    issues: list[Issue]


def _audio_files(folder: Path, place: _Place, issues: list[Issue]) -> list[Path]:
    files = []
    for p in sorted(folder.iterdir(), key=lambda q: q.name):
        if p.name.startswith(".") or p.is_dir() or p.name == ROLES_FILE:
            continue
        if is_audio_path(p):
            files.append(p)
        else:
            issues.append(chk.issue("ignored_file", where=place.label, name=p.name,
                                    extensions=_EXTS))
    return files


def _named_file(folder: Path, base: str, place: _Place, required: bool) -> Path | None:
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and is_audio_path(p)
             and p.stem.lower() == base]
    if len(found) > 1:
        raise chk.fail("ambiguous_file", where=place.label, kind=base,
                       files=", ".join(p.name for p in found))
    if not found and required:
        raise chk.fail("missing_mix", where=place.label, extensions=_EXTS, folder=folder,
                       setting_file=SETTING_FILE)
    return found[0] if found else None


def _check_options(sample_rate: float | None, max_seconds: float | None,
                   offset_seconds: float | None) -> float | None:
    if max_seconds is not None:
        check_range("max_seconds", max_seconds, 0.1, 86400.0, "s")
    if offset_seconds is not None:
        check_range("offset_seconds", offset_seconds, 0.0, 86400.0, "s")
    return None if sample_rate is None else check_sample_rate(sample_rate)


def _excerpt(stem_scans: list[FileScan], total_s: float, max_seconds: float | None,
             offset_seconds: float | None, place: _Place) -> tuple[float, float]:
    """(start, length) in seconds of the region to load."""
    if offset_seconds is not None:
        if offset_seconds >= total_s:
            raise ParameterError(f"offset_seconds = {offset_seconds:g} is out of range for "
                                 f"{place.label}: allowed 0 .. {total_s:.2f} s (its length)")
        start = float(offset_seconds)
    elif max_seconds is not None and total_s > max_seconds:
        blocks = max(len(s.block_power) for s in stem_scans)
        power = np.zeros(blocks)
        for s in stem_scans:
            power[: len(s.block_power)] += s.block_power
        start = loudest_start(power, max(1, int(round(max_seconds / chk.BLOCK_SECONDS))))
        start = round(min(start * chk.BLOCK_SECONDS, total_s - max_seconds), 9)
    else:
        start = 0.0
    length = total_s - start
    return start, length if max_seconds is None else min(length, float(max_seconds))


def _rate_issues(scans: dict[Path, FileScan], sample_rate: float, place: _Place) -> list[Issue]:
    by_rate: dict[float, list[str]] = {}
    for path, s in scans.items():
        by_rate.setdefault(s.info.sample_rate, []).append(path.name)
    out = []
    if len(by_rate) > 1:
        rates = ", ".join(f"{r:g} Hz: {len(f)} files" for r, f in sorted(by_rate.items()))
        out.append(chk.issue("mixed_rates", where=place.label, rates=rates, to_hz=sample_rate))
    for rate, files in sorted(by_rate.items()):
        if rate != sample_rate:
            out.append(chk.issue("resampled", where=place.label, files=", ".join(files),
                                 from_hz=rate, to_hz=sample_rate))
    return out


def _offset_issue(where: str, offset: int, sample_rate: float, reference: str) -> Issue:
    return chk.issue("offset", where=where, ms=1000.0 * offset / sample_rate, samples=offset,
                     sr=sample_rate, reference=reference)


def _check_names(stem_paths: list[Path], place: _Place) -> list[str]:
    names: dict[str, Path] = {}
    for p in stem_paths:
        if p.stem in names:
            raise chk.fail("duplicate_stem", where=place.label, name=p.stem,
                           files=f"{names[p.stem].name}, {p.name}")
        names[p.stem] = p
    return list(names)


def _scan_all(files: list[tuple[Path, str]], place: _Place,
              issues: list[Issue]) -> dict[Path, FileScan]:
    scans: dict[Path, FileScan] = {}
    for path, kind in files:
        scans[path] = chk.scan_file(path, place.file(kind, path))
        clip = chk.clipping_issue(scans[path], place.file(kind, path))
        if clip is not None:
            issues.append(clip)
    return scans


def _length_issues(stem_scans: list[FileScan], place: _Place) -> list[Issue]:
    longest = max(stem_scans, key=lambda s: s.info.duration_seconds)
    out = []
    reference = f"the longest stem '{longest.info.path.name}'"
    for s in stem_scans:
        where = place.file("stem", s.info.path)
        short_ms = 1000.0 * (longest.info.duration_seconds - s.info.duration_seconds)
        fraction = s.info.duration_seconds / longest.info.duration_seconds
        if fraction < chk.SHORT_STEM_FRACTION:
            out.append(chk.issue("short_stem", where=where, pct=100.0 * fraction,
                                 length=chk.duration_text(s.info.duration_seconds),
                                 reference=reference, reference_length=chk.duration_text(
                                     longest.info.duration_seconds)))
        elif short_ms > chk.LENGTH_TOLERANCE_MS:
            out.append(chk.issue("padded", where=where, short_ms=short_ms, reference=reference))
    return out


def _read_stems(place: _Place, stem_paths: list[Path], scans: dict[Path, FileScan],
                override: dict[str, str], start_s: float, n_out: int, sample_rate: float,
                span: str, issues: list[Issue]) -> list[Stem]:
    """Read each stem's region; its role: roles.toml, else its name, else (a name that says
    nothing) its sound, with a warning that says which role the sound gave and why."""
    stems: list[Stem] = []
    for p in stem_paths:
        audio = read_region(scans[p], start_s, n_out, sample_rate)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        where = place.file("stem", p)
        if chk.is_silent(peak):
            issues.append(chk.issue("silent_stem", where=where, span=span,
                                    peak_db=chk.peak_db(peak), db=chk.SILENCE_PEAK_DB))
            continue
        choice = resolve_role(p.stem, audio, sample_rate, override)
        if choice.source in ("audio", "none"):
            issues.append(chk.issue("role_from_audio" if choice.source == "audio" else
                                    "role_unknown", where=where, role=choice.role,
                                    reason=choice.reason, roles_file=ROLES_FILE))
        stems.append(Stem(p.stem, p, choice.role, audio))
    if not stems:
        raise chk.fail("no_usable_stems", where=place.label, count=len(stem_paths),
                       db=chk.SILENCE_PEAK_DB)
    return stems


def _load_set(place: _Place, stem_paths: list[Path], mix_path: Path | None,
              master_path: Path | None, override: dict[str, str], sample_rate: float | None,
              max_seconds: float | None, offset_seconds: float | None,
              issues: list[Issue]) -> _Loaded:
    """The pipeline: scan every file -> rates -> lengths -> excerpt -> stems -> mix -> master."""
    names = _check_names(stem_paths, place)
    files = [(p, "stem") for p in stem_paths]
    files += [(p, k) for p, k in ((mix_path, "mix"), (master_path, "master")) if p is not None]
    scans = _scan_all(files, place, issues)
    if sample_rate is None:
        sample_rate = scans[mix_path if mix_path is not None else stem_paths[0]].info.sample_rate
    issues.extend(_rate_issues(scans, sample_rate, place))
    stem_scans = [scans[p] for p in stem_paths]
    issues.extend(_length_issues(stem_scans, place))
    total_s = max(s.info.duration_seconds for s in stem_scans)
    start_s, length_s = _excerpt(stem_scans, total_s, max_seconds, offset_seconds, place)
    n_out = max(1, int(round(length_s * sample_rate)))
    span = "" if max_seconds is None and not start_s else \
        f" in {start_s:.1f}..{start_s + length_s:.1f} s"

    for track in sorted(set(override) - set(names)):
        issues.append(chk.issue("unused_role", where=f"'{ROLES_FILE}' of {place.label}",
                                track=track))
    stems = _read_stems(place, stem_paths, scans, override, start_s, n_out, sample_rate, span,
                        issues)
    mix = master = None
    offset = 0
    if mix_path is not None:
        found: list[Issue] = []
        mix, offset = _load_mix(place, stems, scans[mix_path], start_s, n_out, total_s,
                                sample_rate, found)
        aligned, turned = _align_stems(place, stems, scans, mix, start_s, n_out, sample_rate,
                                       found)
        if turned:  # a stem turned over pulls the stem sum off the mix: align the mix again
            found = []
            mix, offset = _load_mix(place, [replace(s, audio=np.negative(s.audio))
                                            if s.name in turned else s for s in stems],
                                    scans[mix_path], start_s, n_out, total_s, sample_rate, found)
            aligned, _ = _align_stems(place, stems, scans, mix, start_s, n_out, sample_rate,
                                      found)
        issues.extend(found)
        stems = aligned
        _check_explained(place.file("mix", mix_path), stems, mix, sample_rate)
    if mix is not None and master_path is not None:
        master = _load_master(place, mix, scans[master_path], start_s + offset / sample_rate,
                              n_out, sample_rate, issues)
    return _Loaded(sample_rate, stems, mix, master, offset, start_s, issues)


def _load_mix(place: _Place, stems: list[Stem], scan: FileScan, start_s: float, n_out: int,
              total_s: float, sample_rate: float, issues: list[Issue]) -> tuple[np.ndarray, int]:
    where = place.file("mix", scan.info.path)
    if chk.is_silent(scan.peak):
        raise chk.fail("silent_mix", where=where, peak_db=chk.peak_db(scan.peak),
                       db=chk.SILENCE_PEAK_DB)
    stem_sum = np.sum([s.audio for s in stems], axis=0)
    mix, offset = read_aligned(stem_sum, scan, start_s, n_out, sample_rate)
    if offset:
        issues.append(_offset_issue(where, offset, sample_rate, "the stems"))
    short_ms = 1000.0 * (total_s - (scan.info.duration_seconds - offset / sample_rate))
    if short_ms > chk.LENGTH_TOLERANCE_MS:
        issues.append(chk.issue("padded", where=where, short_ms=short_ms, reference="the stems"))
    return mix, offset


def _align_stems(place: _Place, stems: list[Stem], scans: dict[Path, FileScan],
                 mix: np.ndarray, start_s: float, n_out: int, sample_rate: float,
                 issues: list[Issue]) -> tuple[list[Stem], set[str]]:
    """Each stem moved onto its part of the aligned mix where it is clearly off it (a plugin's
    latency the DAW did not compensate) and turned over where the mix has it turned over
    (``align.stem_offset``), with a warning each; one stem alone is the mix's own alignment.
    Returns the stems and the names of those turned over."""
    if len(stems) < 2:
        return stems, set()
    margin = int(round(STEM_OFFSET_SEARCH_SECONDS * sample_rate))
    out, turned = [], set()
    for stem in stems:
        lag, inverted = stem_offset(mix, stem.audio, margin, sample_rate)
        where = place.file("stem", stem.path)
        if lag:
            issues.append(_offset_issue(where, lag, sample_rate, "its part of the mix"))
            extended = read_region(scans[stem.path], start_s - margin / sample_rate,
                                   n_out + 2 * margin, sample_rate)
            stem = replace(stem, audio=shift_with_margin(extended, margin, lag, n_out))
        if inverted:
            issues.append(chk.issue("polarity", where=where))
            stem = replace(stem, audio=np.negative(stem.audio))
            turned.add(stem.name)
        out.append(stem)
    return out, turned


def _check_explained(where: str, stems: list[Stem], mix: np.ndarray, sample_rate: float) -> None:
    """The mix must be made of these stems (``chk.explained_fraction`` on the loudest part)."""
    stem_sum = np.sum([s.audio for s in stems], axis=0)
    a, b = loudest_window(stem_sum.mean(axis=0), sample_rate, FIT_WINDOW_SECONDS)
    explained = chk.explained_fraction(np.stack([s.audio[:, a:b] for s in stems]),
                                       mix[:, a:b], sample_rate)
    if explained < chk.MIN_EXPLAINED:
        raise chk.fail("mix_unrelated", where=where, **chk.unrelated_fields(explained))


def _load_master(place: _Place, mix: np.ndarray, scan: FileScan, start_s: float, n_out: int,
                 sample_rate: float, issues: list[Issue]) -> np.ndarray | None:
    """The master aligned to the (already aligned) mix, or None if it does not match."""
    where = place.file("master", scan.info.path)
    master, offset = read_aligned(mix, scan, start_s, n_out, sample_rate)
    a, b = loudest_window(mix.mean(axis=0), sample_rate, FIT_WINDOW_SECONDS)
    explained = chk.explained_fraction(mix[None, :, a:b], master[:, a:b], sample_rate)
    if explained < chk.MIN_EXPLAINED:
        issues.append(chk.issue("master_unrelated", where=where, pct=100.0 * explained,
                                min_pct=100.0 * chk.MIN_EXPLAINED))
        return None
    if offset:
        issues.append(_offset_issue(where, offset, sample_rate, "the mix"))
    return master


def _roles_override(folder: Path) -> dict[str, str]:
    path = folder / ROLES_FILE
    return load_roles_override(path) if path.is_file() else {}


def _song_stem_paths(folder: Path, place: "_Place", issues: list[Issue]) -> list[Path]:
    """The stem files of a song folder's ``stems/``; a missing folder or no stems is an error."""
    if not folder.is_dir():
        raise chk.fail("missing_folder", where=place.label, folder=folder)
    stems_dir = folder / "stems"
    stem_paths = _audio_files(stems_dir, place, issues) if stems_dir.is_dir() else []
    if not stem_paths:
        raise chk.fail("no_stems", where=place.label, extensions=_EXTS, folder=stems_dir)
    return stem_paths


def load_song(folder: str | Path, sample_rate: float | None = 44100,
              max_seconds: float | None = None, offset_seconds: float | None = None) -> Song:
    """Load, check and align one song folder (see the module docstring for the layout).

    ``max_seconds`` keeps an excerpt: from ``offset_seconds`` if given, else the loudest
    ``max_seconds`` of the stem sum. ``sample_rate=None`` keeps the mix's own rate.
    """
    folder = Path(folder)
    place = _Place(f"song '{folder.name}'", "of")
    sr = _check_options(sample_rate, max_seconds, offset_seconds)
    issues: list[Issue] = []
    stem_paths = _song_stem_paths(folder, place, issues)
    mix_path = _named_file(folder, "mix", place, required=True)
    master_path = _named_file(folder, "master", place, required=False)
    loaded = _load_set(place, stem_paths, mix_path, master_path, _roles_override(folder), sr,
                       max_seconds, offset_seconds, issues)
    if loaded.mix is None:  # cannot happen: the mix is required above
        raise chk.fail("missing_mix", where=place.label, extensions=_EXTS, folder=folder,
                       setting_file=SETTING_FILE)
    return Song(folder.name, folder, loaded.sample_rate, tuple(loaded.stems), loaded.mix,
                loaded.master, loaded.offset_samples, tuple(loaded.issues), loaded.start_seconds)


@dataclass(frozen=True)
class SongStems:
    """A song folder's stems alone (its mix, if any, not read): what a corrected song is
    learned from (``mixstyle.sessions.corrections``). ``files`` are all the stem files found,
    those skipped as silent included; ``mix_file`` is the mix the folder has (or None)."""

    name: str
    folder: Path
    sample_rate: float
    stems: tuple[Stem, ...]
    files: tuple[Path, ...]
    mix_file: Path | None
    warnings: tuple[Issue, ...]
    start_seconds: float = 0.0


def load_song_stems(folder: str | Path, sample_rate: float | None = 44100,
                    max_seconds: float | None = None) -> SongStems:
    """The stems of one song folder, loaded and checked as ``load_song`` loads them (the same
    excerpt of ``max_seconds``: the loudest region of the stem sum), without its mix."""
    folder = Path(folder)
    place = _Place(f"song '{folder.name}'", "of")
    sr = _check_options(sample_rate, max_seconds, None)
    issues: list[Issue] = []
    stem_paths = _song_stem_paths(folder, place, issues)
    mix_path = _named_file(folder, "mix", place, required=False)
    loaded = _load_set(place, stem_paths, None, None, _roles_override(folder), sr, max_seconds,
                       None, issues)
    return SongStems(folder.name, folder, loaded.sample_rate, tuple(loaded.stems),
                     tuple(stem_paths), mix_path, tuple(loaded.issues), loaded.start_seconds)


def song_folders(root: str | Path) -> list[Path]:
    """The song folders under a sessions folder, sorted by name (SessionError if none)."""
    root = Path(root)
    if not root.is_dir():
        raise SessionError(f"sessions folder '{root}' does not exist")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.name)
    if not folders:
        raise SessionError(f"sessions folder '{root}' has no song folders: expected "
                           f"<song>/stems/<track>.wav and <song>/mix.wav inside")
    return folders


def load_sessions(root: str | Path, sample_rate: float | None = 44100,
                  max_seconds: float | None = None,
                  offset_seconds: float | None = None) -> LoadReport:
    """Load every song folder under ``root``; a bad song lands in ``errors``, the rest load."""
    _check_options(sample_rate, max_seconds, offset_seconds)
    songs, errors = [], []
    for folder in song_folders(root):
        try:
            songs.append(load_song(folder, sample_rate, max_seconds, offset_seconds))
        except MixstyleError as exc:
            errors.append((folder.name, str(exc)))
    return LoadReport(tuple(songs), tuple(errors))


@dataclass(frozen=True)
class StemSet:
    """New stems, all at ``sample_rate`` (the session's rate: the first file's, or the one
    asked for), padded to one length."""

    stems: tuple[Stem, ...]
    sample_rate: float


def load_stems(stems_dir: str | Path, sample_rate: float | None = 44100,
               max_seconds: float | None = None, offset_seconds: float | None = None,
               on_warning: Callable[[Issue], None] | None = None) -> list[Stem]:
    """New stems for ``mixstyle mix``: audio files directly in ``stems_dir`` (+ roles.toml).

    Same checks as a song without a mix. Warnings go to ``on_warning`` if given, else they are
    emitted as ``SessionWarning``. ``sample_rate=None`` keeps the first stem's rate
    (``load_stem_set`` also says which rate that was).
    """
    return list(load_stem_set(stems_dir, sample_rate, max_seconds, offset_seconds,
                              on_warning).stems)


def stems_folder(path: str | Path) -> Path:
    """The stems folder of what the user gave: a song folder (one holding ``stems/``) or the
    stems folder itself."""
    path = Path(path)
    return path / "stems" if (path / "stems").is_dir() else path


def load_stem_set(stems_dir: str | Path, sample_rate: float | None = None,
                  max_seconds: float | None = None, offset_seconds: float | None = None,
                  on_warning: Callable[[Issue], None] | None = None) -> StemSet:
    """``load_stems`` with the rate the stems were loaded at; by default the first stem's own
    rate (stems at other rates are resampled to it, with the ``mixed_rates`` warning).
    ``stems_dir`` may be a song folder as ``learn`` reads them (``stems/``, ``mix.wav``...): its
    ``stems/`` is loaded, not its mix and master as two more stems."""
    stems_dir = stems_folder(stems_dir)
    place = _Place(f"stems folder '{stems_dir}'", "in")
    sr = _check_options(sample_rate, max_seconds, offset_seconds)
    if not stems_dir.is_dir():
        raise chk.fail("missing_folder", where=place.label, folder=stems_dir)
    issues: list[Issue] = []
    paths = _audio_files(stems_dir, place, issues)
    if not paths:
        raise chk.fail("no_stems", where=place.label, extensions=_EXTS, folder=stems_dir)
    loaded = _load_set(place, paths, None, None, _roles_override(stems_dir), sr, max_seconds,
                       offset_seconds, issues)
    _emit(loaded.issues, on_warning)
    return StemSet(tuple(loaded.stems), loaded.sample_rate)


def _emit(issues: Iterable[Issue], on_warning: Callable[[Issue], None] | None) -> None:
    for item in issues:
        if on_warning is not None:
            on_warning(item)
        else:
            _warnings.warn(item.message, SessionWarning, stacklevel=3)
