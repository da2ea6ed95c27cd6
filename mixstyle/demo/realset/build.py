"""``mixstyle realset OUT``: the real set's songs, written as mixstyle sessions.

Sources (all Debian main): the tracker modules of ``MODULE_PACKAGES`` (downloaded and unpacked
into a cache, not installed) and Hydrogen's demo songs (the installed ``hydrogen-data``). Each
song becomes ``OUT/<song>/stems/<track>.wav`` (dry, float32; mono when L == R), ``mix.wav`` (the
author's mix, float32, nothing added) and ``source.json`` (package, file, author, licence, what
the dry stems had reset, the excerpt, the mix - stems residual). A song folder appears whole or
not at all (built in ``OUT/.<song>.partial``, then renamed); a song already built with the same
settings is kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mixstyle.demo.realset import debs, hydrogen, openmpt
from mixstyle.demo.realset.excerpt import Track, antiphase, check_tracks, fade, is_mono
from mixstyle.demo.realset.modfields import kind_of
from mixstyle.demo.realset.names import clean, stem_names
from mixstyle.demo.realset.tracker import Rendered, render_module
from mixstyle.errors import ParameterError
from mixstyle.io.audio import write_audio_atomic, write_text_atomic

SAMPLE_RATE_HZ = 44100
FORMAT_VERSION = 1            # bump when a change makes earlier built songs stale
MODULE_PACKAGES = ("pingus-data", "tecnoballz-data", "freedroid-data", "bomberclone-data",
                   "circuslinux-data", "penguin-command", "njam-data", "ri-li-data", "solarwolf",
                   "gweled")
HYDROGEN = "hydrogen-data"
MODULE_SUFFIXES = (".it", ".xm", ".s3m", ".mod")
SOURCE_FILE = "source.json"
SKIPPED_DIR = ".skipped"      # OUT/.skipped/<song>.json: why, so that a rebuild does not retry

Log = Callable[[str], None]


@dataclass(frozen=True)
class SongSource:
    name: str           # the song folder's name
    package: str
    path: Path          # the file on disk
    file: str           # its path inside the package
    version: str
    licence: str              # as the package's copyright file states it for this file
    holders: str              # copyright holders, from the same stanza ('' if not stated)
    copyright: Path | None    # the package's copyright file


def song_name(package: str, file_stem: str) -> str:
    short = re.sub(r"-data$", "", package)
    return clean(f"{short}-{file_stem}").replace(" ", "_")


def module_sources(package: str, cache: Path | None = None) -> list[SongSource]:
    """The package's tracker modules (by signature, so ``language.It`` is not one)."""
    pkg = debs.unpack(package, cache)
    out = []
    for p in sorted(pkg.root.rglob("*")):
        if p.is_file() and p.suffix.lower() in MODULE_SUFFIXES and kind_of(p.read_bytes()):
            file = "/" + str(p.relative_to(pkg.root))
            out.append(SongSource(song_name(package, p.stem), package, p, file, pkg.version,
                                  *pkg.licence_of(file), _file_or_none(pkg.copyright_path())))
    return out


def hydrogen_sources(demo_dir: Path = hydrogen.DEMO_SONGS) -> list[SongSource]:
    """Hydrogen's demo songs, from the installed package (h2cli reads its drumkits there)."""
    hydrogen.check_h2cli(demo_dir)
    version = _installed_version(HYDROGEN)
    installed = debs.Unpacked(HYDROGEN, version, Path("/"))
    return [SongSource(song_name("hydrogen", p.stem), HYDROGEN, p, str(p), version,
                       *installed.licence_of(str(p)), _file_or_none(installed.copyright_path()))
            for p in sorted(Path(demo_dir).glob("*.h2song"))]


def source_fields(src: SongSource) -> dict:
    """What source.json says about where the song comes from (no rendering needed)."""
    fields = {"package": src.package, "package_version": src.version, "file": src.file,
              "licence": src.licence or "see COPYRIGHT", "copyright_holders": src.holders}
    if src.package != HYDROGEN:
        with openmpt.Module(src.path.read_bytes(), src.name) as m:
            fields["credits_in_file"] = m.credits()
    return fields


def refresh_source(folder: Path, src: SongSource) -> None:
    """Bring a built song's source fields up to date (a change of wording, not of audio)."""
    path = folder / SOURCE_FILE
    meta = json.loads(path.read_text())
    fresh = {**meta, **source_fields(src)}
    if fresh != meta:
        write_text_atomic(path, json.dumps(fresh, indent=2) + "\n")


def _file_or_none(path: Path) -> Path | None:
    return path if path.is_file() else None


def _installed_version(package: str) -> str:
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        return ""
    for block in status.read_text("utf-8", "replace").split("\n\n"):
        if re.search(rf"^Package: {re.escape(package)}$", block, re.M):
            m = re.search(r"^Version: (\S+)$", block, re.M)
            return m.group(1) if m else ""
    return ""


def catalogue(sources: tuple[str, ...] | None = None, cache: Path | None = None,
              log: Log = print) -> list[SongSource]:
    """Every song of the chosen sources (package names, ``hydrogen-data`` for Hydrogen's),
    modules first, in a fixed order."""
    chosen = sources or MODULE_PACKAGES + (HYDROGEN,)
    unknown = sorted(set(chosen) - set(MODULE_PACKAGES) - {HYDROGEN})
    if unknown:
        raise ParameterError(f"unknown real-set source(s) {', '.join(unknown)}: choose from "
                         f"{', '.join(MODULE_PACKAGES + (HYDROGEN,))}")
    songs: list[SongSource] = []
    for package in MODULE_PACKAGES:
        if package in chosen:
            found = module_sources(package, cache)
            log(f"{package}: {len(found)} module(s)")
            songs += found
    if HYDROGEN in chosen:
        songs += hydrogen_sources()
    return songs


def _settings(seconds: float) -> dict:
    return {"format_version": FORMAT_VERSION, "excerpt_seconds": seconds,
            "sample_rate_hz": SAMPLE_RATE_HZ}


def _settings_match(path: Path, seconds: float) -> dict | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("settings") == _settings(seconds) else None


def is_built(folder: Path, seconds: float) -> bool:
    return (_settings_match(folder / SOURCE_FILE, seconds) is not None
            and (folder / "mix.wav").is_file())


def skipped_before(out: Path, name: str, seconds: float) -> str:
    """The reason a song was skipped by an earlier build with the same settings, or ''."""
    meta = _settings_match(out / SKIPPED_DIR / f"{name}.json", seconds)
    return meta["reason"] if meta else ""


def write_song(out: Path, src: SongSource, rendered: Rendered, seconds: float) -> Path:
    """The song folder, whole: stems, mix, source.json, the package's copyright file."""
    if rendered.mix is None or any(t.dry is None for t in rendered.tracks):
        raise ValueError(f"{src.name}: nothing rendered to write ({rendered.skip})")
    names = stem_names([(t.index, t.raw_name) for t in rendered.tracks],
                       trust=rendered.meta.get("format") == "h2song")
    final = out / src.name
    tmp = out / f".{src.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "stems").mkdir(parents=True)
    stems = []
    for t in rendered.tracks:
        t.name = names[t.index]
        dry = t.dry if t.dry is not None else np.zeros_like(t.mixed)
        audio = dry[:1] if is_mono(dry) else dry
        write_audio_atomic(tmp / "stems" / f"{t.name}.wav", audio, SAMPLE_RATE_HZ, sync=False)
        stems.append({"file": f"stems/{t.name}.wav", "track": t.index + 1,
                      "name_in_file": t.raw_name.strip(), "channels": audio.shape[0]})
    write_audio_atomic(tmp / "mix.wav", rendered.mix, SAMPLE_RATE_HZ, sync=False)
    if src.copyright is not None:
        shutil.copyfile(src.copyright, tmp / "COPYRIGHT")
    meta = {"song": src.name, **source_fields(src), **rendered.meta, "stems": stems,
            "settings": _settings(seconds)}
    write_text_atomic(tmp / SOURCE_FILE, json.dumps(meta, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def render_hydrogen(src: SongSource, seconds: float, min_seconds: float,
                    jobs: int = 8) -> Rendered:
    song = hydrogen.read_song(src.path)
    section = hydrogen.choose_section(song, seconds)
    if section.seconds < min_seconds:
        return Rendered(None, [], {}, f"{section.seconds:.1f} s long, under "
                                      f"{min_seconds:g} s")
    r = hydrogen.render_song(song, section, jobs)
    mix = fade(r.mix, SAMPLE_RATE_HZ)
    if antiphase(mix):
        return Rendered(None, [], {}, antiphase(mix))
    by_index = {int(i.id): i for i in song.instruments}
    tracks = [Track(k, i.name, fade(r.mixed[i.id], SAMPLE_RATE_HZ))
              for k, i in by_index.items()]
    checked = check_tracks(mix, tracks)
    meta = {"format": "h2song", "title": song.name, "author": song.author or None,
            "renderer": "h2cli (Hydrogen) 44100 Hz 32-bit, humanize off, loop off",
            "changed_in_every_render": ["humanize time/velocity -> 0", "loop off"] +
            ([f"song master volume x{r.master_scale:g} (the mix clipped h2cli's integer "
              f"export)"] if r.master_scale != 1 else []),
            "dry_reset": ["instrument volume -> 1, gain -> 1, pan -> centre"],
            "author_mix": {by_index[t.index].name: {"volume": by_index[t.index].volume,
                                                   "gain": by_index[t.index].gain,
                                                   "pan": by_index[t.index].pan}
                           for t in checked.kept},
            "tracks_are": "instruments", "residual_db": round(checked.residual_db, 1),
            "start_seconds": round(sum(song.column_seconds(k) for k in range(section.start)), 3),
            "seconds": round(mix.shape[1] / SAMPLE_RATE_HZ, 3),
            "dropped_near_silent": [d.raw_name for d in checked.dropped]}
    if not checked.ok:
        return Rendered(None, [], meta, f"the instruments do not add up to the mix "
                                        f"(residual {checked.residual_db:.1f} dB, needs <= -60)")
    for t in checked.kept:
        t.dry = fade(r.dry[by_index[t.index].id], SAMPLE_RATE_HZ)
    return Rendered(mix, checked.kept, meta)


def _module_job(src: SongSource, seconds: float, min_seconds: float) -> Rendered:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return render_module(src.path.read_bytes(), src.name, seconds, min_seconds)


def build_realset(out: Path, seconds: float = 30.0, songs: int | None = None,
                  sources: tuple[str, ...] | None = None, cache: Path | None = None,
                  jobs: int = 2, min_seconds: float | None = None, log: Log = print
                  ) -> list[Path]:
    """Build (or keep) every song; returns the song folders written or kept, in order."""
    if not 0.5 <= seconds <= 600:
        raise ParameterError(f"seconds = {seconds}: allowed 0.5 .. 600")
    min_seconds = seconds / 2 if min_seconds is None else min_seconds
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = catalogue(sources, cache, log)[:songs]
    done: dict[str, Path] = {}
    fresh = []
    for s in todo:
        if is_built(out / s.name, seconds):
            refresh_source(out / s.name, s)
            done[s.name] = out / s.name
        elif skipped_before(out, s.name, seconds):
            log(f"skipped {s.name} (as before): {skipped_before(out, s.name, seconds)}")
        else:
            fresh.append(s)
    mods = [s for s in fresh if s.package != HYDROGEN]
    h2 = [s for s in fresh if s.package == HYDROGEN]

    def finish(src: SongSource, rendered: Rendered) -> None:
        if rendered.skip:
            log(f"skipped {src.name}: {rendered.skip}")
            (out / SKIPPED_DIR).mkdir(exist_ok=True)
            write_text_atomic(out / SKIPPED_DIR / f"{src.name}.json", json.dumps(
                {"reason": rendered.skip, "settings": _settings(seconds)}, indent=2) + "\n")
            return
        done[src.name] = write_song(out, src, rendered, seconds)
        log(f"{src.name}: {len(rendered.tracks)} stems, {rendered.meta['tracks_are']}, "
            f"residual {rendered.meta['residual_db']} dB")

    with ProcessPoolExecutor(max(1, jobs)) as pool:
        futures = [(s, pool.submit(_module_job, s, seconds, min_seconds)) for s in mods]
        # Hydrogen renders wait on h2cli's real-time export, not on the CPU: they run here
        # while the pool renders the modules
        for s in h2:
            finish(s, render_hydrogen(s, seconds, min_seconds, jobs=12))
        for s, fut in futures:
            finish(s, fut.result())
    return [done[s.name] for s in todo if s.name in done]
