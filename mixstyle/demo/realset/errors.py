"""The real set's one error: a tool, library or package it needs is missing or failed."""

from __future__ import annotations

from mixstyle.demo.songs import DemoToolError


class RealSetToolError(DemoToolError):
    """apt-get/dpkg-deb, libopenmpt or h2cli is missing or failed; the sentence names the
    Debian package to install."""
