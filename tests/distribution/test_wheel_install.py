"""The wheel ``make wheel`` builds installs and works without a Rust toolchain (issue 14).

``scripts/run-tests.sh`` builds it into ``dist/`` before pytest (decision 91); here it is
installed with pip into a fresh virtual environment whose PATH has no ``cargo`` or
``rustc``, its dependencies from the package index, and then imported, run as the demo on
the memory transport and used for one publish and consume round trip on the real broker.
A missing or stale wheel fails the test: run ``make wheel``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from platform import machine

import pytest
from tests.conftest import BOOTSTRAP

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
ROUNDTRIP = Path(__file__).with_name("wheel_roundtrip.py")
# pip fetches the dependencies (pydantic) from the index; the bound is generous for that.
INSTALL_TIMEOUT_S = 240
RUN_TIMEOUT_S = 120
ROUNDTRIP_WAIT_S = 60
SOURCES = ("rust", "python", "Cargo.toml", "Cargo.lock", "build.rs", "pyproject.toml")


def newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".so":
                continue
            newest = max(newest, f.stat().st_mtime)
    return newest


def built_wheel() -> Path:
    wheels = sorted(DIST.glob("tradecore_eventbus-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        pytest.fail(f"no tradecore_eventbus wheel in {DIST}: run `make wheel`")
    wheel = wheels[-1]
    if wheel.stat().st_mtime < newest_source_mtime():
        pytest.fail(f"{wheel.name} is older than the sources: run `make wheel`")
    return wheel


def path_without_rust() -> str:
    """The current PATH minus every directory that holds cargo or rustc."""
    keep = [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any(Path(d, tool).exists() for tool in ("cargo", "rustc"))
    ]
    return os.pathsep.join(keep)


@dataclass
class Installed:
    wheel: Path
    python: Path
    env: dict[str, str]
    home: Path

    def run(self, *args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def checked(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    wheel = built_wheel()
    home = tmp_path_factory.mktemp("wheel-install")
    # No pip of its own (ensurepip costs ~7 s): this run's pip installs into it with
    # `--python`, running under the new environment's interpreter.
    venv.create(home / "venv", with_pip=False, clear=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "CARGO", "RUSTUP", "PYO3", "MATURIN"))
    }
    env["PATH"] = os.pathsep.join([str(home / "venv" / "bin"), path_without_rust()])
    env["XDG_STATE_HOME"] = str(home / "state")
    target = Installed(wheel, home / "venv" / "bin" / "python", env, home)
    # Proven inside the environment pip runs in: no toolchain to fall back on.
    checked(
        target.run(
            "-c",
            "import shutil, sys; sys.exit(any(shutil.which(t) for t in ('cargo', 'rustc')))",
        )
    )
    pip = [sys.executable, "-m", "pip", "--python", str(target.python), "install", "--quiet"]
    installing = subprocess.run(
        [*pip, "--only-binary=:all:", str(wheel)],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    checked(installing)
    return target


def test_the_wheel_is_one_abi3_wheel_for_python_3_11_and_up() -> None:
    tags = built_wheel().name.removesuffix(".whl").split("-")[2:]
    python, abi, platform = tags
    assert (python, abi) == ("cp311", "abi3")
    assert platform.startswith("manylinux_"), platform
    assert platform.endswith(f"_{machine()}"), platform


def test_auditwheel_finds_no_external_library_to_bundle() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(built_wheel())],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    out = " ".join(checked(proc).split())
    platform = built_wheel().name.removesuffix(".whl").split("-")[-1]
    assert f'is consistent with the following platform tag: "{platform}"' in out, out
    assert "external shared libraries are required" not in out, out


def test_no_rust_toolchain_is_reachable_from_the_environment(installed: Installed) -> None:
    assert shutil.which("cargo", path=installed.env["PATH"]) is None
    assert shutil.which("rustc", path=installed.env["PATH"]) is None


def test_the_installed_wheel_imports_from_the_new_environment(installed: Installed) -> None:
    out = checked(
        installed.run(
            "-c",
            "import json, tradecore_eventbus as t, tradecore_eventbus._core as c; "
            "print(json.dumps([t.__file__, c.__file__, t.librdkafka_version()]))",
        )
    )
    package, core, librdkafka = json.loads(out)
    site = str(installed.home / "venv" / "lib")
    assert package.startswith(site), package
    assert core.startswith(site), core
    assert core.endswith(".abi3.so"), core
    assert librdkafka.count(".") == 2, librdkafka


def test_the_demo_runs_on_the_memory_transport(installed: Installed) -> None:
    out = checked(installed.run("-m", "tradecore_eventbus.demo", "--broker", "memory"))
    assert "transport: memory" in out
    assert "handled 100 orders, in publish order: True" in out
    assert "rejected an invalid order, nothing sent" in out


@pytest.mark.kafka
def test_one_event_goes_through_the_real_broker_and_back(installed: Installed) -> None:
    out = checked(installed.run(str(ROUNDTRIP), BOOTSTRAP, str(ROUNDTRIP_WAIT_S)))
    result = json.loads(out.strip().splitlines()[-1])
    assert result["received_event_id"] == result["sent_event_id"]
    assert result["received_run"] == result["run"]
    assert result["sent_topic"].startswith("transport.wheel-")
