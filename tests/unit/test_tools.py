"""Tools outside .venv: a missing one is named with the make target that installs it; nothing installs it then."""

import pytest

from tritonkit import tools


def test_a_missing_venv_tool_names_make_tools_and_installs_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("TRITONKIT_RUNTIME", str(tmp_path))
    with pytest.raises(tools.ToolMissing, match=r"perf-analyzer is not installed .*run `make tools` \(installs "
                                                r"tritonclient==2\.51\.0"):
        tools.require("perf-analyzer")
    assert list(tmp_path.iterdir()) == []
    assert tools.missing(["perf-analyzer", "model-analyzer"]) == ["perf-analyzer", "model-analyzer"]


def test_a_missing_system_package_names_the_apt_get_line(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda program: None)
    with pytest.raises(tools.ToolMissing, match=r"podman, runc, debootstrap, /usr/libexec/podman/catatonit missing|"
                                                r"podman, runc, debootstrap missing"):
        tools.require("podman")
    with pytest.raises(tools.ToolMissing, match=r"apt-get install -y --no-install-recommends haproxy`"):
        tools.require("haproxy")


def test_without_root_a_system_package_is_a_reason_to_skip_not_an_install(monkeypatch):
    monkeypatch.setattr(tools.shutil, "which", lambda program: None)
    monkeypatch.setattr(tools.os, "geteuid", lambda: 1000)
    why = tools.install(["prometheus"])
    assert why is not None and "not root on Debian" in why and "apt-get install" in why
