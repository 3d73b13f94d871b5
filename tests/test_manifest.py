"""Sharded jet sets: one jets job per event shard, a manifest per split, class fractions
allotted by the manifest without reading a whole split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jetfm.config import stage_params, validate_config
from jetfm.contract import LABEL_B, LABEL_C, LABEL_LIGHT, SPLITS
from jetfm.jets import JetFileError, build_jet_sets, read_jet_table
from jetfm.jets.jet_sets import read_jet_set, read_metadata
from jetfm.jets.manifest import allot_classes, kept_rows, read_manifest, write_manifest


def test_allotment_reaches_the_fractions_in_proportion_to_each_shard() -> None:
    counts = np.array([[600, 0, 50], [0, 300, 50], [200, 100, 0]])  # shards × classes
    keep = allot_classes(counts, [1.0, 1.0, 1.0])
    assert keep.sum(axis=0).tolist() == [100, 100, 100] and (keep <= counts).all()
    # class 0 (800 jets) is taken 3:1 from shards 0 and 2, as they hold it
    assert keep[:, 0].tolist() == [75, 0, 25]
    keep = allot_classes(counts, [0.5, 0.5, 0.0])
    assert keep.sum(axis=0).tolist() == [400, 400, 0]
    keep = allot_classes(counts, [0.8, 0.4, 0.1])  # already in these proportions: keep all
    assert np.array_equal(keep, counts)


def test_kept_rows_are_the_first_jets_of_each_class() -> None:
    labels = np.array([2, 0, 0, 1, 0, 2, 1, 0])
    mask = kept_rows(labels, [2, 0, 1])
    assert np.flatnonzero(mask).tolist() == [0, 1, 2]
    assert kept_rows(labels, None).all()


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, small_config: dict,
           event_files: dict[str, Path]) -> dict[str, dict[str, Path]]:
    """One jets job per event shard, as the DAG runs them: split → shard → file."""
    out = tmp_path_factory.mktemp("sharded")
    params = stage_params(small_config, "jets", sample="btag") | {}
    params["jets"] = params["jets"] | {"row_group_jets": 25}
    files: dict[str, dict[str, Path]] = {s: {} for s in SPLITS}
    for shard, events in event_files.items():
        paths = {s: out / s / f"{shard}.parquet" for s in SPLITS}
        build_jet_sets([events], params, paths, progress=False)
        for split in SPLITS:
            files[split][shard] = paths[split]
    return files


def _manifest(shards: dict[str, dict[str, Path]], split: str, out: Path, fractions: dict | None = None,
              files: list[Path] | None = None) -> dict:
    params = {"sample": "btag", "split": split, "fractions": fractions}
    return write_manifest(files if files is not None else list(shards[split].values()), params, out)


def test_shards_hold_the_jets_of_one_job_over_every_file(shards: dict, event_files: dict, small_config: dict,
                                                          tmp_path: Path) -> None:
    """A jet's split depends on its shard and event only: per-shard jobs give the jets the one
    job over all files gives, so adding a shard moves no jet between splits."""
    whole = {s: tmp_path / f"{s}.parquet" for s in SPLITS}
    build_jet_sets(list(event_files.values()), stage_params(small_config, "jets", sample="btag"), whole,
                   progress=False)
    for split in SPLITS:
        manifest = _manifest(shards, split, shards[split]["bb-000"].parent.parent / f"{split}.json")
        joined = read_jet_table(shards[split]["bb-000"].parent.parent / f"{split}.json")
        reference = read_jet_table(whole[split])
        assert manifest["jets"] == joined.n_jets == reference.n_jets > 0
        np.testing.assert_array_equal(joined.jets["jet_pt"], reference.jets["jet_pt"])
        np.testing.assert_array_equal(joined.tracks["d0"], reference.tracks["d0"])


def test_manifest_counts_shards_classes_and_row_groups(shards: dict, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    manifest = _manifest(shards, "train", out)
    on_disk = json.loads(out.read_text())
    assert on_disk["kind"] == "jetfm-jet-manifest"
    assert on_disk["sample"] == "btag" and on_disk["split"] == "train"
    for shard in manifest["shards"]:
        table = read_jet_table(shards["train"][shard["name"]])
        assert shard["jets"] == table.n_jets
        assert shard["per_class"] == np.bincount(table.jets["label"], minlength=3).tolist()
        assert shard["row_groups"] == -(-table.n_jets // 25)  # row_group_jets = 25
        assert pq.ParquetFile(shards["train"][shard["name"]]).metadata.num_row_groups == shard["row_groups"]
    assert manifest["jets"] == sum(s["jets"] for s in manifest["shards"])
    meta = read_metadata(out)  # a manifest reads like a jet file: sample, split, label names
    assert meta["config"]["sample"] == "btag" and meta["split"] == "train"
    assert meta["manifest"]["shards"] == ["bb-000", "light-000"]


def test_fractions_are_applied_by_the_manifest(shards: dict, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    manifest = _manifest(shards, "train", out, fractions={"light": 1.0, "c": 0.0, "b": 1.0})
    table = read_jet_set(out, "btag")
    counts = np.bincount(table.jets["label"], minlength=3)
    assert counts[LABEL_LIGHT] == counts[LABEL_B] > 0 and counts[LABEL_C] == 0
    assert manifest["per_class"] == counts.tolist() and manifest["jets"] == table.n_jets
    # the light jets come from both shards, in proportion to what each holds
    light = [s["keep"][LABEL_LIGHT] for s in manifest["shards"]]
    assert all(n > 0 for n in light)


def test_a_split_that_keeps_no_jets_warns_and_is_refused_by_its_readers(shards: dict, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    with pytest.warns(UserWarning, match=r"keeps no jets.*samples.btag.jets"):
        _manifest(shards, "train", out, files=[_empty_shard(shards, tmp_path)])
    with pytest.raises(JetFileError, match=f"{out}: holds no jets"):
        read_jet_set(out, "btag")


def _empty_shard(shards: dict, tmp_path: Path) -> Path:
    table = pq.read_table(shards["train"]["bb-000"])
    empty = tmp_path / "empty-000.parquet"
    pq.write_table(table.slice(0, 0), empty)
    return empty


@pytest.mark.parametrize(("files", "fragment"), [
    (lambda s, t: [s["train"]["bb-000"], s["train"]["bb-000"]], "holds the same events"),
    (lambda s, t: [s["train"]["bb-000"], _copy(s["train"]["bb-000"], t / "bb-001.parquet")],
     "holds the same events"),
    (lambda s, t: [s["train"]["bb-000"], s["val"]["light-000"]],
     "a 'val' file given to the 'train' manifest"),
    (lambda s, t: [], "needs at least one shard"),
], ids=["the same shard twice", "a copy of a shard", "a file of another split", "no shards"])
def test_bad_shard_lists_are_refused(shards: dict, tmp_path: Path, files, fragment: str) -> None:
    out = tmp_path / "train.json"
    with pytest.raises((ValueError, JetFileError), match=fragment):
        _manifest(shards, "train", out, files=files(shards, tmp_path))
    assert not out.exists()


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


@pytest.mark.parametrize(("content", "fragment"), [
    ("{not json", "not a jet manifest"),
    ('{"kind": "something"}', "not a jetfm jet manifest"),
    ('{"kind": "jetfm-jet-manifest", "schema_version": -1, "shards": []}', "schema version -1"),
], ids=["not JSON", "another kind", "another schema version"])
def test_bad_manifests_name_the_file(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "train.json"
    path.write_text(content)
    with pytest.raises(JetFileError, match=fragment) as info:
        read_manifest(path)
    assert str(path) in str(info.value)


def test_manifest_of_the_other_sample_is_refused(shards: dict, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    _manifest(shards, "train", out)
    with pytest.raises(JetFileError, match="made for sample 'btag', not 'boosted'"):
        read_jet_set(out, "boosted")


def test_jets_params_leave_fractions_to_the_manifest() -> None:
    """Changing the class fractions re-runs the manifests, not the jets jobs."""
    a = validate_config({})
    b = validate_config({"samples": {"btag": {"jets": {"fractions": {"light": 1, "c": 1, "b": 1}}}}})
    assert stage_params(a, "jets", sample="btag") == stage_params(b, "jets", sample="btag")
    assert stage_params(a, "manifest", sample="btag", split="train") != \
        stage_params(b, "manifest", sample="btag", split="train")


def test_a_bounded_read_samples_every_shard_in_proportion(shards: dict, tmp_path: Path) -> None:
    out = tmp_path / "train.json"
    manifest = _manifest(shards, "train", out)
    whole = read_jet_table(out)
    n = whole.n_jets // 3
    part = read_jet_table(out, max_jets=n)
    assert part.n_jets == n
    for shard in manifest["shards"]:  # each shard's share, from its first jets
        share = part.source == shard["name"]
        assert abs(share.sum() - n * shard["jets"] / manifest["jets"]) <= 1
        first = whole.jets["jet_pt"][whole.source == shard["name"]][: share.sum()]
        np.testing.assert_array_equal(part.jets["jet_pt"][share], first)
