"""Debian packages as data: ``apt-get download`` the .deb and ``dpkg-deb -x`` it into a cache
folder, without installing anything (the games stay uninstalled; only their music is read).

The cache holds ``debs/<file>.deb`` and ``<package>/`` (the unpacked tree, complete once
``<package>/.unpacked`` exists: an interrupted unpack is redone). The version is the .deb's own.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mixstyle.demo.realset.errors import RealSetToolError

DONE_MARK = ".unpacked"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/mixstyle/realset`` (``~/.cache/mixstyle/realset``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mixstyle" / "realset"


@dataclass(frozen=True)
class Unpacked:
    package: str
    version: str
    root: Path               # the unpacked tree (usr/share/...)

    def copyright_path(self) -> Path:
        return self.root / "usr" / "share" / "doc" / self.package / "copyright"

    def licence_of(self, file: str) -> tuple[str, str]:
        """(licence, copyright holders) of ``file`` (its path in the package) as the package's
        copyright file states them: in a machine-readable (DEP-5) file the last stanza whose
        ``Files:`` pattern matches the end of the path (``*`` matches all); in a free-form one,
        the GNU licence and version it names. ('', '') without a copyright file."""
        path = self.copyright_path()
        if not path.is_file():
            return "", ""
        return licence_in(path.read_text("utf-8", "replace"), file)


def _field(stanza: str, name: str) -> str:
    m = re.search(rf"^{name}:[ \t]*(.*(?:\n[ \t]+.*)*)", stanza, re.M)
    if not m:
        return ""
    lines = [re.sub(r"\s+", " ", ln).strip() for ln in m.group(1).splitlines()]
    return "; ".join(ln for ln in lines if ln and ln != ".")


def licence_in(text: str, file: str) -> tuple[str, str]:
    parts = [p for p in Path(file.strip("/")).parts]
    tails = ["/".join(parts[k:]) for k in range(len(parts))]
    if re.match(r"Format:", text):
        found = ("", "")
        for stanza in re.split(r"\n\s*\n", text):
            patterns = _field(stanza, "Files").replace(";", " ").split()
            if any(pat == "*" or any(fnmatch.fnmatch(t, pat) for t in tails)
                   for pat in patterns):
                licence = _field(stanza, "License").split(";")[0].strip()
                found = (licence, _field(stanza, "Copyright"))
        return found
    flat = re.sub(r"\s+", " ", text)
    m = re.search(r"GNU (Lesser |Library )?General Public License.{0,80}?version (\d(?:\.\d)?)"
                  r"(.{0,60}?any later version)?", flat, re.I)
    if m:
        kind = "LGPL" if m.group(1) else "GPL"
        return f"{kind}-{m.group(2)}{'+' if m.group(3) else ''}", ""
    if re.search(r"GNU GENERAL PUBLIC LICENSE", flat, re.I):
        return "GPL (version not stated)", ""
    return "", ""


def _tool(name: str, package: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise RealSetToolError(f"the real set gets its songs from Debian packages with '{name}', "
                               f"which is not on PATH (Debian package '{package}'); the songs "
                               f"cannot be fetched on this system")
    return exe


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    res = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, check=False)
    if res.returncode != 0:
        tail = "\n".join(res.stdout.strip().splitlines()[-4:])
        hint = (" (is the package list there? run apt-get update as root)"
                if "apt-get" in cmd[0] else "")
        raise RealSetToolError(f"{what} failed (exit {res.returncode}){hint}: "
                               f"{' '.join(cmd)}\n{tail}")
    return res.stdout


def _deb_file(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def unpack(package: str, cache: Path | None = None) -> Unpacked:
    """The package's files, downloaded and unpacked into ``cache`` on first use."""
    cache = Path(cache) if cache is not None else default_cache()
    root = cache / package
    debs = cache / "debs"
    deb = _deb_file(debs, package)
    if deb is not None and (root / DONE_MARK).is_file():
        return Unpacked(package, (root / DONE_MARK).read_text().strip(), root)
    if deb is None:
        apt = _tool("apt-get", "apt")
        debs.mkdir(parents=True, exist_ok=True)
        _run([apt, "download", "-q", package], debs, f"downloading Debian package '{package}'")
        deb = _deb_file(debs, package)
        if deb is None:
            raise RealSetToolError(f"apt-get download {package} left no {package}_*.deb in "
                                   f"{debs}")
    dpkg_deb = _tool("dpkg-deb", "dpkg")
    version = _run([dpkg_deb, "-f", str(deb), "Version"], debs, f"reading {deb.name}").strip()
    if root.exists():
        shutil.rmtree(root)
    tmp = cache / f".{package}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    _run([dpkg_deb, "-x", str(deb), str(tmp)], cache, f"unpacking {deb.name}")
    (tmp / DONE_MARK).write_text(version + "\n")
    os.replace(tmp, root)
    return Unpacked(package, version, root)
