"""jetfm installed as a package (not editable), used from outside the checkout.

A fresh venv gets jetfm alone: a wheel built from this checkout, installed by the venv's pip;
its dependencies come from the test environment's site-packages through a path file (a path
file's directory is searched but its own path files are not run, so the editable jetfm there
stays out). From a directory outside the checkout, the installed ``jetfm`` reads the schema
shipped inside the package and runs a stage.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env_dir = tmp_path_factory.mktemp("plain-install") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([str(python), "-c", where], capture_output=True, text=True, check=True)
    # the test environment's packages (torch, snakemake, ...) for the new venv
    Path(site.stdout.strip(), "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # a wheel of the checkout, built by this environment's setuptools, installed by the venv's pip
    wheels = tmp_path_factory.mktemp("wheels")
    quiet = ["--quiet", "--no-deps", "--no-index"]
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", *quiet, "--no-build-isolation", "-w",
                            str(wheels), str(REPO)], capture_output=True, text=True, cwd=wheels)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("jetfm-*.whl")
    proc = subprocess.run([str(python), "-m", "pip", "install", *quiet, str(wheel)], capture_output=True,
                          text=True, cwd=wheels)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return env_dir


def test_plain_install_reads_its_schema_and_runs_a_stage(installed: Path, tmp_path: Path) -> None:
    python, jetfm = installed / "bin" / "python", installed / "bin" / "jetfm"
    where = subprocess.run([str(python), "-c", "import jetfm; print(jetfm.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(installed) and not Path(where).is_relative_to(REPO), where
    # the checkout is nowhere in reach: a copy of the tiny config in a directory of its own
    config = tmp_path / "tiny.yaml"
    config.write_text((REPO / "config/tiny.yaml").read_text())
    check = subprocess.run([str(jetfm), "check-config", str(config)], cwd=tmp_path, capture_output=True,
                           text=True)
    assert check.returncode == 0 and "valid" in check.stdout, check.stdout + check.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("pretrain: {stepz: 3}\n")
    refused = subprocess.run([str(jetfm), "check-config", str(bad)], cwd=tmp_path, capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "pretrain.stepz" in refused.stdout + refused.stderr
    out = tmp_path / "bb-000.root"
    stage = subprocess.run([str(jetfm), "-q", "generate", "--config", str(config), "--shard", "bb-000",
                            "--sample", "btag", "--out", str(out)], cwd=tmp_path, capture_output=True,
                           text=True)
    assert stage.returncode == 0, stage.stdout[-2000:] + stage.stderr[-2000:]
    import uproot

    with uproot.open(out) as events:
        assert events["events"].num_entries == 120  # tiny.yaml: 120 events per btag shard


def test_the_wheel_carries_the_schema(installed: Path) -> None:
    files = list(installed.glob("lib/python*/site-packages/jetfm/config.schema.yaml"))
    assert len(files) == 1 and files[0].stat().st_size > 10_000
    assert sys.version_info >= (3, 11)
