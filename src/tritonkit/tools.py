"""The tools outside the project's own environment, installed by setup (``make tools``), never at run time.

    perf-analyzer   Triton's load generator (tritonclient 2.51's wheel), in a venv of its own: its pins clash
    model-analyzer  Triton Model Analyzer, in a venv of its own
    container-ort   the NGC 24.10 image's ONNX Runtime, to check the exported graphs against it (tests)
    haproxy         the replicas' balancer (Debian package; apt-get, as root)
    prometheus      the replicas' metrics (Debian package; apt-get, as root)
    podman          the container engine where no Docker engine runs (Debian packages; see shared FACTS)

Code that needs one calls ``require(name)``: the tool's path, or ``ToolMissing`` naming ``make tools`` (and, for a
system package, the apt-get line). ``python -m tritonkit.tools install [NAME ...]`` is what the make target runs;
with no name it installs them all, saying what it does and how long each takes. A system package that cannot be
installed (not root, not Debian) is a warning there, not a failure: the tests that need it skip and say why.

Exceptions::

    ToolMissing    a tool is not installed; the message names `make tools` (and the apt-get line for a package)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tritonkit import paths

APT_HINT = "sudo apt-get update && sudo apt-get install -y --no-install-recommends {packages}"


class ToolMissing(RuntimeError):
    """A tool outside the project's environment is not installed; the message names the make target or command."""


@dataclasses.dataclass(frozen=True)
class Venv:
    """A tool pip installs into a virtual environment of its own under ``.triton/``."""

    folder: str  # under paths.runtime()
    executable: str  # in the venv's bin/
    pins: tuple[str, ...]
    duration: str

    def path(self) -> Path:
        return paths.runtime() / self.folder / "venv" / "bin" / self.executable


@dataclasses.dataclass(frozen=True)
class Package:
    """Programs (and files) from Debian packages (Debian 12: HAProxy 2.6, Prometheus 2.42, podman 4.3)."""

    programs: tuple[str, ...]
    packages: tuple[str, ...]
    files: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        return [p for p in self.programs if shutil.which(p) is None] + [f for f in self.files if not Path(f).exists()]


TOOLS: dict[str, Venv | Package] = {
    # the last tritonclient wheel with a perf_analyzer for glibc 2.36 (2.52-2.60 need 2.38)
    "perf-analyzer": Venv("perf", "perf_analyzer", ("tritonclient==2.51.0",), "about 20 s"),
    "model-analyzer": Venv("analyze", "model-analyzer", (
        "triton-model-analyzer==1.51.0",  # the release that matches the embedded tritonserver 2.51
        "tritonclient[all]==2.51.0",  # what model-analyzer 1.51 resolves with (grpcio<1.68, protobuf<5, numpy<2)
    ), "about 90 s"),
    # the ONNX Runtime of nvcr.io/nvidia/tritonserver:24.10-py3
    "container-ort": Venv("ort-container", "python", ("onnxruntime==1.19.2", "numpy<2"), "about 20 s"),
    "haproxy": Package(("haproxy",), ("haproxy",)),
    "prometheus": Package(("prometheus",), ("prometheus",)),
    # rootless podman here: runc (crun fails on cgroup v1), catatonit for --init, debootstrap for the local base
    "podman": Package(("podman", "runc", "debootstrap"), ("podman", "runc", "uidmap", "slirp4netns", "fuse-overlayfs",
                                                          "catatonit", "debootstrap"),
                      ("/usr/libexec/podman/catatonit",)),
}


def require(name: str) -> Path:
    """The installed tool's executable; ``ToolMissing`` with the fix when it is not there."""
    tool = TOOLS[name]
    if isinstance(tool, Venv):
        if not tool.path().exists():
            raise ToolMissing(f"{name} is not installed ({tool.path()} is missing): run `make tools` "
                              f"(installs {', '.join(tool.pins)}, {tool.duration})")
        return tool.path()
    gone = tool.missing()
    if gone:
        raise ToolMissing(f"{', '.join(gone)} missing: run `make tools` as root on Debian, or "
                          f"`{APT_HINT.format(packages=' '.join(tool.packages))}`")
    return Path(shutil.which(tool.programs[0]) or tool.programs[0])


def missing(names: list[str]) -> list[str]:
    """Which of ``names`` are not installed."""
    gone = []
    for name in names:
        try:
            require(name)
        except ToolMissing:
            gone.append(name)
    return gone


def install(names: list[str]) -> str | None:
    """Installs ``names`` where they are missing; None when all are there afterwards, else why not (a test's
    fixture skips with it: system packages need root and apt-get)."""
    packages = []
    for name in missing(names):
        tool = TOOLS[name]
        if isinstance(tool, Venv):
            venv = tool.path().parent.parent
            print(f"installing {name} ({', '.join(tool.pins)}) into {venv} ({tool.duration})...", file=sys.stderr,
                  flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", *tool.pins], check=True, timeout=1800)
        else:
            packages += [package for package in tool.packages if package not in packages]
    if packages:
        why = _apt_install(packages)
        if why is not None:
            return why
    still = missing(names)
    return f"{' and '.join(still)} still missing after installing" if still else None


def _apt_install(packages: list[str]) -> str | None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"{' and '.join(packages)} not installed, and this is not root on Debian; "
                f"{APT_HINT.format(packages=' '.join(packages))}")
    print(f"installing {' '.join(packages)} with apt-get (about 30 s)...", file=sys.stderr, flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                               *packages]):
        done = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode:
            return f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()[-500:]}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tritonkit.tools", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("install", help="install the tools named (all when none is), skipping those present")
    add.add_argument("names", nargs="*", choices=[*TOOLS, []], metavar="NAME", help=", ".join(TOOLS))
    commands.add_parser("list", help="each tool and whether it is installed")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in TOOLS:
            try:
                print(f"{name:15} {require(name)}")
            except ToolMissing as exc:
                print(f"{name:15} missing: {exc}")
        return 0
    names = args.names or list(TOOLS)
    why = install(names)
    if why is None:
        return 0
    if all(isinstance(TOOLS[name], Package) for name in missing(names)):
        # Not root, or not Debian: the tests that need them skip and say why; the rest of setup goes on.
        print(f"warning: {why}", file=sys.stderr)
        return 0
    print(f"error: {why}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(paths.run_cli(main))
