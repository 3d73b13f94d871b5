"""Shared fixtures: one small simulated sample, generated once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from jetfm.config import stage_params, validate_config

REPO = Path(__file__).resolve().parents[1]


def truncated_copy(source: Path, directory: Path) -> Path:
    """The first half of ``source``, as a damaged file would be."""
    data = source.read_bytes()
    cut = directory / f"cut{source.suffix}"
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.fixture(scope="session")
def small_config() -> dict:
    return validate_config({"generate": {"seed": 5}})


@pytest.fixture(scope="session")
def event_files(tmp_path_factory: pytest.TempPathFactory, small_config: dict) -> dict[str, Path]:
    """200 b-bbar and 200 inclusive-QCD events."""
    from jetfm.events import generate_shard

    out = tmp_path_factory.mktemp("events")
    files = {}
    for shard in ("bb-000", "light-000"):
        path = out / f"{shard}.root"
        generate_shard(stage_params(small_config, "generate", sample="btag", shard=shard), path, n_events=200,
                       progress=False)
        files[shard] = path
    return files


@pytest.fixture(scope="session")
def jet_files(tmp_path_factory: pytest.TempPathFactory, small_config: dict,
              event_files: dict[str, Path]) -> dict[str, Path]:
    from jetfm.jets import build_jet_sets

    out = tmp_path_factory.mktemp("jets")
    paths = {s: out / f"{s}.parquet" for s in ("train", "val", "test")}
    build_jet_sets(list(event_files.values()), stage_params(small_config, "jets", sample="btag"), paths,
                   progress=False)
    return paths
