"""The streaming loader: one epoch reads each jet once over ranks and workers, seeded
shuffling with length buckets, and a resumed epoch yields the batches an uninterrupted one
would have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from jetfm.config import stage_params
from jetfm.contract import SPLITS
from jetfm.data.features import PaddedJets
from jetfm.data.stream import JetStream, StreamPosition, stream_batches
from jetfm.jets import build_jet_sets, read_jet_table
from jetfm.jets.manifest import write_manifest


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory, small_config: dict,
              event_files: dict[str, Path]) -> dict[str, Path]:
    """The conftest events as two shards in row groups of 16 jets (many units), and manifests
    without and with a class allotment."""
    out = tmp_path_factory.mktemp("stream")
    params = stage_params(small_config, "jets", sample="btag")
    params["jets"] = params["jets"] | {"row_group_jets": 16}
    for shard, events in event_files.items():
        paths = {s: out / s / f"{shard}.parquet" for s in SPLITS}
        build_jet_sets([events], params, paths, progress=False)
    shards = sorted((out / "train").glob("*.parquet"))
    plain = write_manifest(shards, {"sample": "btag", "split": "train", "fractions": None},
                           out / "train.json")
    assert sum(s["row_groups"] for s in plain["shards"]) >= 8
    write_manifest(shards, {"sample": "btag", "split": "train", "fractions": {"light": 1, "c": 0, "b": 1}},
                   out / "balanced.json")
    return {"plain": out / "train.json", "balanced": out / "balanced.json"}


def _ids(batch: PaddedJets) -> list[tuple[float, ...]]:
    """A jet's identity: its kinematics and label."""
    assert batch.jet is not None
    return [tuple(row) for row in torch.cat([batch.jet, batch.label[:, None].float()], dim=1).tolist()]


def _all_ids(path: Path) -> list[tuple[float, ...]]:
    table = read_jet_table(path)
    rows = np.stack([table.jets[k] for k in ("jet_pt", "jet_eta", "jet_phi", "jet_mass")], axis=1)
    rows = np.concatenate([rows.astype(np.float32), table.jets["label"][:, None].astype(np.float32)], axis=1)
    return sorted(tuple(r) for r in torch.from_numpy(rows).tolist())


def _epoch(stream: JetStream, workers: int = 0) -> list[PaddedJets]:
    return list(DataLoader(stream, batch_size=None, num_workers=workers))


@pytest.mark.parametrize("workers", [0, 2])
def test_one_epoch_reads_every_jet_once(manifests: dict[str, Path], workers: int) -> None:
    stream = JetStream(manifests["plain"], batch_size=8, seed=3, pool_jets=32)
    batches = _epoch(stream, workers)
    assert len(batches) == stream.batches_per_epoch(workers)
    assert sorted(i for b in batches for i in _ids(b)) == _all_ids(manifests["plain"])
    assert all(len(b) <= 8 for b in batches)


def test_ranks_share_an_epoch_without_overlap(manifests: dict[str, Path]) -> None:
    parts = [[i for b in _epoch(JetStream(manifests["plain"], batch_size=8, seed=3, rank=r, world_size=2))
              for i in _ids(b)] for r in range(2)]
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == _all_ids(manifests["plain"])


def test_the_class_allotment_is_streamed(manifests: dict[str, Path]) -> None:
    batches = _epoch(JetStream(manifests["balanced"], batch_size=8, seed=0))
    assert sorted(i for b in batches for i in _ids(b)) == _all_ids(manifests["balanced"])
    labels = torch.cat([b.label for b in batches])
    assert (labels == 0).sum() == (labels == 2).sum() > 0 and not (labels == 1).any()


def test_shuffling_is_seeded_and_changes_with_the_epoch(manifests: dict[str, Path]) -> None:
    def order(seed: int, epoch: int) -> list[tuple[float, ...]]:
        stream = JetStream(manifests["plain"], batch_size=8, seed=seed)
        stream.set_position(epoch)
        return [i for b in _epoch(stream) for i in _ids(b)]

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    assert sorted(order(1, 0)) == sorted(order(1, 1))


def test_length_buckets_pad_less(manifests: dict[str, Path]) -> None:
    def fill(pool_jets: int) -> float:
        batches = _epoch(JetStream(manifests["plain"], batch_size=8, seed=5, pool_jets=pool_jets))
        return sum(float(b.mask.sum()) for b in batches) / sum(b.mask.numel() for b in batches)

    assert fill(10_000) > fill(1) + 0.05  # the whole split sorted vs one row group at a time


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_a_resumed_epoch_yields_the_uninterrupted_batches(manifests: dict[str, Path], workers: int) -> None:
    stream = JetStream(manifests["plain"], batch_size=8, seed=7, pool_jets=32)
    whole = [_ids(b) for b in _epoch(stream, workers)]
    for consumed in (1, 5, len(whole) // 2, len(whole) - 1):
        stream.set_position(0, consumed)
        assert [_ids(b) for b in _epoch(stream, workers)] == whole[consumed:], consumed


def test_training_position_resumes_across_epochs(manifests: dict[str, Path]) -> None:
    stream = JetStream(manifests["plain"], batch_size=16, seed=2)
    per_epoch = stream.batches_per_epoch()
    position = StreamPosition()
    batches = stream_batches(stream, position)
    whole = [_ids(next(batches)) for _ in range(per_epoch + 5)]
    assert position.epoch == 1 and position.consumed == 5
    resumed_at = StreamPosition(**StreamPosition(0, per_epoch - 2).state_dict())
    again = stream_batches(JetStream(manifests["plain"], batch_size=16, seed=2), resumed_at)
    assert [_ids(next(again)) for _ in range(7)] == whole[per_epoch - 2:]


def test_fixed_width_batches(manifests: dict[str, Path]) -> None:
    batches = _epoch(JetStream(manifests["plain"], batch_size=8, max_constituents=15))
    assert {b.mask.shape[1] for b in batches} == {15}


def test_bad_arguments_are_refused(manifests: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="positive"):
        JetStream(manifests["plain"], batch_size=0)
    with pytest.raises(ValueError, match="rank 2 outside a world of 2"):
        JetStream(manifests["plain"], batch_size=8, rank=2, world_size=2)


# --- pre-training on the stream ----------------------------------------------------------------

class _Killed(RuntimeError):
    pass


def _pretrain(manifests: dict[str, Path], out: Path, workers: int, on_step=None) -> dict:
    from jetfm.config import validate_config
    from jetfm.pretrain import pretrain_backbone

    cfg = validate_config({
        "backbones": {"mpm-reg": {"tasks": ["reg", "id"], "encoder": {"dim": 16, "layers": 1, "heads": 2,
                                                                      "registers": 1},
                                  "decoder": {"dim": 8, "layers": 1, "heads": 1}}},
        "pretrain": {"steps": 14, "batch_size": 32, "warmup_steps": 2, "eval_every": 7, "probe_every": 7,
                     "probe_jets": 50, "checkpoint_every": 5, "loader": "stream", "loader_workers": workers,
                     "pool_jets": 32}})
    params = stage_params(cfg, "pretrain", backbone="mpm-reg")
    pretrain_backbone(manifests["plain"], manifests["plain"], {}, params, out, out.with_suffix(".csv"),
                      progress=False, on_step=on_step)
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_pretraining_resumes_to_the_uninterrupted_result(manifests: dict[str, Path], tmp_path: Path,
                                                                  workers: int) -> None:
    """14 steps of 32 jets cross an epoch boundary; killed at step 8, resumed from step 5."""
    stream = JetStream(manifests["plain"], batch_size=32, pool_jets=32)
    assert stream.batches_per_epoch(workers) < 14
    whole = _pretrain(manifests, tmp_path / "whole.pt", workers)

    def kill(step: int) -> None:
        if step == 8:
            raise _Killed

    with pytest.raises(_Killed):
        _pretrain(manifests, tmp_path / "resumed.pt", workers, on_step=kill)
    state = torch.load(tmp_path / "resumed.pt.resume", weights_only=False)
    assert state["step"] == 5 and state["stream"]["consumed"] + state["stream"]["epoch"] > 0
    resumed = _pretrain(manifests, tmp_path / "resumed.pt", workers)
    for key, value in whole["model_state"].items():
        assert torch.equal(value, resumed["model_state"][key]), key


def test_streamed_pretraining_needs_a_manifest(jet_files: dict[str, Path], manifests: dict[str, Path],
                                               tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reads a split's manifest"):
        _pretrain({"plain": jet_files["train"]}, tmp_path / "x.pt", 0)


def test_a_probe_sample_reads_random_row_groups(manifests: dict[str, Path]) -> None:
    stream = JetStream(manifests["plain"], batch_size=8)
    a, b = stream.sample(40, seed=0), stream.sample(40, seed=1)
    assert len(a) == len(b) == 40 and _ids(a) != _ids(b)
    assert set(_ids(a)) <= set(_all_ids(manifests["plain"]))
    assert stream.max_length == max(int(b.lengths.max()) for b in _epoch(stream))


# --- downstream on the stream ---------------------------------------------------------------

def _downstream_params(mode: str, point: str = "all", loader: str = "stream") -> dict:
    from jetfm.config import validate_config

    cfg = validate_config({
        "backbones": {"mpm-reg": {"tasks": ["reg", "id"], "encoder": {"dim": 16, "layers": 1, "heads": 2,
                                                                      "registers": 1},
                                  "decoder": {"dim": 8, "layers": 1, "heads": 1}}},
        "downstream": {"btag_ood_accuracy": {"backbones": ["mpm-reg"], "steps": 12, "eval_every": 4,
                                             "batch_size": 16, "frozen_steps": 2, "head_heads": 2,
                                             "loader": loader, "pool_jets": 48}}})
    return stage_params(cfg, "downstream", benchmark="btag_ood_accuracy", backbone="mpm-reg", mode=mode,
                        point=point, seed="0")


@pytest.mark.parametrize("mode", ["scratch", "fixed"])
def test_a_downstream_run_streams_its_training_jets(manifests: dict[str, Path], tmp_path: Path,
                                                    mode: str) -> None:
    from jetfm.downstream.run import run_benchmark, streams

    checkpoint = None
    if mode == "fixed":
        _pretrain(manifests, tmp_path / "backbone.pt", 0)
        checkpoint = tmp_path / "backbone.pt"
    params = _downstream_params(mode)
    assert streams(params) and not streams(_downstream_params(mode, point="n40"))
    assert not streams(_downstream_params(mode, loader="memory"))
    result = run_benchmark(params, manifests["plain"], manifests["plain"], manifests["plain"], checkpoint,
                           tmp_path / "run.json", progress=False)
    row = result["rows"][0]
    assert row["n_train"] == JetStream(manifests["plain"], batch_size=16).n_jets
    assert 0.0 <= row["value"] <= 1.0 and row["learning_curve"] and row["stopped_step"] <= 12


def test_streamed_downstream_needs_a_manifest(jet_files: dict[str, Path], tmp_path: Path) -> None:
    from jetfm.downstream.run import run_benchmark

    with pytest.raises(ValueError, match="reads a split's manifest"):
        run_benchmark(_downstream_params("scratch"), jet_files["train"], jet_files["val"], jet_files["test"],
                      None, tmp_path / "run.json", progress=False)


def test_pools_are_tokenized_as_they_are_read(manifests: dict[str, Path]) -> None:
    from jetfm.tokenize.kmeans import KMeansTokenizer

    tokenizer = KMeansTokenizer(np.random.default_rng(0).normal(size=(16, 7)).astype(np.float32), {})
    for workers in (0, 2):
        stream = JetStream(manifests["plain"], batch_size=8, pool_jets=32, tokenizers={"kmeans": tokenizer})
        for batch in _epoch(stream, workers):
            assert batch.tokens is not None
            assert torch.equal(batch.tokens["kmeans"], tokenizer.tokens(batch))
            assert (batch.tokens["kmeans"][~batch.mask] == -1).all()
