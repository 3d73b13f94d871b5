"""Bad inputs fail loudly and name their cause: contradictory config, jet sets that are valid on
disk but wrong in meaning, event files that cannot make a jet set, and malformed command lines.

Every case gives the expected error type and a fragment of its message; data cases also check
that the message names the file and that nothing was written at the output path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from jetfm.cli import main
from jetfm.config import ConfigError, stage_params, validate_config
from jetfm.jets import JetFileError, build_jet_sets
from jetfm.jets.jet_sets import read_jet_set
from tests.conftest import REPO, truncated_copy

TINY = str(REPO / "config" / "tiny.yaml")

# --- config: every cross-field contradiction names its key ---------------------------------

def _sample(sample: str, section: str, **values: Any) -> dict[str, Any]:
    return {"samples": {sample: {section: values}}}


CONFIG_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("boosted pt window inverted", _sample("boosted", "jets", pt_min_gev=900.0, pt_max_gev=600.0),
     "samples.boosted.jets.pt_max_gev"),
    ("boosted pt window empty", _sample("boosted", "jets", pt_min_gev=700.0, pt_max_gev=700.0),
     "samples.boosted.jets.pt_max_gev"),
    ("min_tracks above max_tracks", _sample("btag", "jets", min_tracks=9, max_tracks=4),
     "samples.btag.jets.min_tracks"),
    ("pthat window inverted", _sample("btag", "generate", pthat_min_gev=50.0, pthat_max_gev=20.0),
     "samples.btag.generate.pthat_max_gev"),
    ("boosted pthat below the jet window",
     _sample("boosted", "generate", pthat_min_gev=100.0, pthat_max_gev=200.0),
     "samples.boosted.generate.pthat_max_gev"),
    ("split does not sum to one", _sample("btag", "jets", split={"train": 0.5, "val": 0.1, "test": 0.1}),
     "samples.btag.jets.split"),
    ("no shards", _sample("btag", "generate", shards={"bb": 0, "cc": 0, "light": 0}),
     "samples.btag.generate.shards"),
    ("all fractions zero", _sample("btag", "jets", fractions={"light": 0, "c": 0, "b": 0}),
     "samples.btag.jets.fractions"),
    ("kmeans with fewer fit points than clusters", {"tokenizers": {"kmeans": {"k": 512, "n_fit": 100}}},
     "tokenizers.kmeans.n_fit"),
    ("signal is the background", {"downstream": {"cwola_sic": {"signal": "QCD", "background": "QCD"}}},
     "downstream.cwola_sic.signal"),
    ("signal not a class", {"downstream": {"cwola_sic": {"signal": "Zbb"}}}, "downstream.cwola_sic.signal"),
    ("unknown key", {"pretrain": {"stpes": 10}}, "pretrain.stpes"),
    ("wrong type", {"pretrain": {"steps": "many"}}, "pretrain.steps"),
    ("negative learning rate", {"pretrain": {"lr": -1.0}}, "pretrain.lr"),
    ("reference heads do not divide the width",
     {"references": {"part": {"embed_dims": [64, 64, 30], "num_heads": 4}}}, "references.part.num_heads"),
    ("unknown backbone in a benchmark", {"downstream": {"btag_track_id": {"backbones": ["nope"]}}},
     "downstream.btag_track_id.backbones"),
]


@pytest.mark.parametrize(("overrides", "key"), [c[1:] for c in CONFIG_CASES],
                         ids=[c[0] for c in CONFIG_CASES])
def test_contradictory_config_is_refused_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"'{key}")):
        validate_config(overrides)


def test_check_config_command_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("samples:\n  btag:\n    jets: {min_tracks: 9, max_tracks: 4}\n")
    assert main(["check-config", str(bad)]) == 2
    assert "samples.btag.jets.min_tracks" in capsys.readouterr().err


# --- jet sets: valid Parquet, wrong meaning -------------------------------------------------


def _rewrite(source: Path, out: Path, change: Callable[[pa.Table], pa.Table]) -> Path:
    """A copy of a jet file with ``change`` applied to its table; jetfm's metadata kept."""
    table = pq.read_table(source)
    pq.write_table(change(table).replace_schema_metadata(table.schema.metadata), out)
    return out


def _with_constituent_value(field: str, value: float, row: int = 0) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        lists = table.column("constituents").combine_chunks()
        values = lists.values
        column = values.field(field).to_numpy(zero_copy_only=False).copy()
        column[row] = value
        arrays = [pa.array(column) if name == field else values.field(name) for name in values.type.names]
        struct = pa.StructArray.from_arrays(arrays, names=values.type.names)
        new = pa.ListArray.from_arrays(lists.offsets, struct)
        return table.set_column(table.schema.get_field_index("constituents"), "constituents", new)
    return change


def _with_jet_value(column: str, value: float) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        data = table.column(column).to_numpy().copy()
        data[0] = value
        return table.set_column(table.schema.get_field_index(column), column, pa.array(data))
    return change


def _without_constituent_field(field: str) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        lists = table.column("constituents").combine_chunks()
        names = [n for n in lists.values.type.names if n != field]
        struct = pa.StructArray.from_arrays([lists.values.field(n) for n in names], names=names)
        new = pa.ListArray.from_arrays(lists.offsets, struct)
        return table.set_column(table.schema.get_field_index("constituents"), "constituents", new)
    return change


def _no_rows(table: pa.Table) -> pa.Table:
    return table.slice(0, 0)


def _no_constituents(table: pa.Table) -> pa.Table:
    lists = table.column("constituents").combine_chunks()
    empty = pa.ListArray.from_arrays(pa.array(np.zeros(len(table) + 1, np.int32)), lists.values.slice(0, 0))
    table = table.set_column(table.schema.get_field_index("constituents"), "constituents", empty)
    zero = pa.array(np.zeros(len(table), np.int16))
    return table.set_column(table.schema.get_field_index("n_constituents"), "n_constituents", zero)


def _without_column(column: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.drop_columns([column])


JET_SET_CASES: list[tuple[str, Callable[[pa.Table], pa.Table], str]] = [
    ("NaN constituent pT", _with_constituent_value("pt", np.nan), "constituents.pt"),
    ("inf constituent d0", _with_constituent_value("d0", np.inf, row=3), "constituents.d0"),
    ("-inf constituent deta", _with_constituent_value("deta", -np.inf, row=1), "constituents.deta"),
    ("NaN constituent z0 error", _with_constituent_value("z0_err", np.nan, row=2), "constituents.z0_err"),
    ("NaN jet pT", _with_jet_value("jet_pt", np.nan), "jet_pt"),
    ("inf jet mass", _with_jet_value("jet_mass", np.inf), "jet_mass"),
    ("missing constituent field", _without_constituent_field("origin"), "constituents.origin"),
    ("missing jet column", _without_column("label"), "label"),
    ("no jets", _no_rows, "holds no jets"),
    ("no constituents in any jet", _no_constituents, "no constituents"),
]


@pytest.mark.parametrize(("change", "fragment"), [c[1:] for c in JET_SET_CASES],
                         ids=[c[0] for c in JET_SET_CASES])
def test_jet_set_wrong_in_meaning_is_refused(jet_files: dict[str, Path], tmp_path: Path,
                                            change: Callable[[pa.Table], pa.Table], fragment: str) -> None:
    bad = _rewrite(jet_files["test"], tmp_path / "bad.parquet", change)
    with pytest.raises(JetFileError, match=re.escape(fragment)) as error:
        read_jet_set(bad, sample="btag")
    assert str(bad) in str(error.value)


def test_non_finite_values_are_counted(jet_files: dict[str, Path], tmp_path: Path) -> None:
    def three_nans(table: pa.Table) -> pa.Table:
        for row in (0, 5, 9):
            table = _with_constituent_value("pt", np.nan, row)(table)
        return table

    bad = _rewrite(jet_files["test"], tmp_path / "bad.parquet", three_nans)
    with pytest.raises(JetFileError, match=r"3 NaN or infinite values in column 'constituents.pt'"):
        read_jet_set(bad, sample="btag")


def test_jets_of_the_other_sample_are_refused(jet_files: dict[str, Path]) -> None:
    with pytest.raises(JetFileError, match="made for sample 'btag', not 'boosted'"):
        read_jet_set(jet_files["train"], sample="boosted")


@pytest.mark.parametrize("content", [b"", b"PAR1 not really parquet", bytes(range(256)) * 10],
                         ids=["empty file", "bad magic", "random bytes"])
def test_unreadable_jet_files_name_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(content)
    with pytest.raises(JetFileError, match=re.escape(str(bad))):
        read_jet_set(bad, sample="btag")


def test_good_jet_set_passes(jet_files: dict[str, Path]) -> None:
    table = read_jet_set(jet_files["test"], sample="btag")
    assert table.n_jets > 0 and np.all(np.isfinite(table.tracks["pt"]))


@pytest.mark.parametrize(("change", "fragment"), [
    (_with_constituent_value("pt", np.nan), "constituents.pt"),
    (_no_constituents, "no constituents"),
], ids=["NaN in the test set", "empty jets in the training set"])
def test_benchmark_on_bad_jets_exits_without_a_result(jet_files: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     change: Callable[[pa.Table], pa.Table],
                                                     fragment: str) -> None:
    bad = _rewrite(jet_files["test"], tmp_path / "bad.parquet", change)
    out = tmp_path / "result.json"
    code = main(["baselines", "--config", TINY, "--benchmark", "btag_vertex_ari", "--train", str(bad),
                 "--test", str(bad), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and str(bad) in err and "Traceback" not in err
    assert not out.exists()


# --- event files that cannot make a jet set --------------------------------------------------


def _jets_params(small_config: dict, **jets: Any) -> dict[str, Any]:
    params = stage_params(small_config, "jets", sample="btag")
    params["jets"] = params["jets"] | jets
    return params


def _outputs(tmp_path: Path) -> dict[str, Path]:
    return {s: tmp_path / f"{s}.parquet" for s in ("train", "val", "test")}


def test_same_event_file_twice_is_refused(event_files: dict[str, Path], small_config: dict,
                                          tmp_path: Path) -> None:
    files = [event_files["bb-000"], event_files["light-000"], event_files["bb-000"]]
    with pytest.raises(ValueError, match=r"bb-000.root.*given twice"):
        build_jet_sets(files, _jets_params(small_config), _outputs(tmp_path), progress=False)
    assert not any(p.exists() for p in _outputs(tmp_path).values())


def test_copy_of_an_event_file_is_refused(event_files: dict[str, Path], small_config: dict,
                                          tmp_path: Path) -> None:
    copy = tmp_path / "bb-001.root"
    copy.write_bytes(event_files["bb-000"].read_bytes())
    with pytest.raises(ValueError, match="same events"):
        build_jet_sets([event_files["bb-000"], copy], _jets_params(small_config), _outputs(tmp_path),
                       progress=False)


def test_event_file_without_events_is_refused(small_config: dict, tmp_path: Path) -> None:
    from jetfm.events.root_io import EventWriter
    from jetfm.provenance import provenance

    empty = tmp_path / "bb-000.root"
    params = stage_params(small_config, "generate", sample="btag", shard="bb-000")
    with EventWriter(empty, uuid.uuid4(), provenance("generate", params)):
        pass
    with pytest.raises(ValueError, match=r"bb-000.root.*holds no events"):
        build_jet_sets([empty], _jets_params(small_config), _outputs(tmp_path / "out"), progress=False)


def test_event_file_of_the_other_sample_is_refused(small_config: dict, tmp_path: Path,
                                                    event_files: dict[str, Path]) -> None:
    boosted = stage_params(small_config, "jets", sample="boosted")
    with pytest.raises(ValueError, match="not a boosted-sample event file"):
        build_jet_sets([event_files["bb-000"]], boosted, _outputs(tmp_path), progress=False)


def test_selection_of_no_jets_writes_nothing(event_files: dict[str, Path], small_config: dict,
                                             tmp_path: Path) -> None:
    outputs = _outputs(tmp_path)
    with pytest.raises(ValueError, match=r"selects no jets.*samples.btag.jets"):
        build_jet_sets(list(event_files.values()), _jets_params(small_config, pt_min_gev=5000.0), outputs,
                       progress=False)
    assert not any(p.exists() for p in outputs.values())


# --- command lines ---------------------------------------------------------------------------

CLI_CASES: list[tuple[str, list[str], str]] = [
    ("params not an object", ["baselines", "--params", "[1, 2]", "--benchmark", "btag_vertex_ari",
                              "--train", "x", "--test", "x", "--out", "{out}"],
     "--params must be a JSON object"),
    ("params not JSON", ["baselines", "--params", "{mode:", "--benchmark", "btag_vertex_ari",
                         "--train", "x", "--test", "x", "--out", "{out}"], "--params is not valid JSON"),
    ("params missing an entry", ["generate", "--params", "{}", "--sample", "btag", "--shard", "bb-000",
                                 "--out", "{out}"], "missing entry 'generate'"),
    ("shard without an index", ["generate", "--config", TINY, "--sample", "btag", "--shard", "bb",
                                "--out", "{out}"], "shard 'bb'"),
    ("shard of an unknown process", ["generate", "--config", TINY, "--sample", "btag",
                                     "--shard", "tt-000", "--out", "{out}"], "unknown process 'tt'"),
    ("config file missing", ["generate", "--config", "{tmp}/nope.yaml", "--sample", "btag",
                             "--shard", "bb-000", "--out", "{out}"], "config file not found"),
    ("config not a mapping", ["check-config", "{tmp}/list.yaml"], "must hold a mapping"),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_command_line_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                      fragment: str) -> None:
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    out = tmp_path / "out.root"
    code = main([a.replace("{out}", str(out)).replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert not out.exists()



# --- checkpoints: checked against what they claim ---------------------------------------------

_ENCODER = {"dim": 16, "layers": 1, "heads": 2, "registers": 1}


def _checkpoint_config(encoder: dict[str, Any] = _ENCODER) -> dict[str, Any]:
    return validate_config({
        "backbones": {"mpm-reg": {"tasks": ["reg", "id"], "encoder": encoder,
                                  "decoder": {"dim": 8, "layers": 1, "heads": 1}}},
        "pretrain": {"steps": 4, "batch_size": 16, "warmup_steps": 1, "eval_every": 4, "probe_every": 4,
                     "probe_jets": 50, "checkpoint_every": 2},
        "downstream": {"btag_track_id": {"backbones": ["mpm-reg"], "steps": 4, "eval_every": 2,
                                         "batch_size": 16, "frozen_steps": 2, "head_hidden": 8}},
    })


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory, jet_files: dict[str, Path]) -> Path:
    from jetfm.pretrain import pretrain_backbone

    out = tmp_path_factory.mktemp("backbone") / "mpm-reg.pt"
    pretrain_backbone(jet_files["train"], jet_files["val"], {},
                      stage_params(_checkpoint_config(), "pretrain", backbone="mpm-reg"), out,
                      out.with_suffix(".csv"), progress=False)
    return out


def _downstream_argv(jet_files: dict[str, Path], checkpoint: Path, out: Path,
                     encoder: dict[str, Any] = _ENCODER) -> list[str]:
    params = stage_params(_checkpoint_config(encoder), "downstream", benchmark="btag_track_id",
                          backbone="mpm-reg", mode="fixed", point="all", seed="0")
    return ["downstream", "--params", json.dumps(params), "--benchmark", "btag_track_id",
            "--backbone", "mpm-reg", "--mode", "fixed", "--train", str(jet_files["train"]),
            "--val", str(jet_files["val"]), "--test", str(jet_files["test"]), "--checkpoint", str(checkpoint),
            "--out", str(out)]


def _not_a_backbone(backbone: Path, tmp: Path) -> Path:
    torch.save({"kind": "something else", "weights": torch.zeros(3)}, tmp / "foreign.pt")
    return tmp / "foreign.pt"


def _a_tokenizer(backbone: Path, tmp: Path) -> Path:
    torch.save({"kind": "kmeans", "centroids": torch.zeros(4, 7), "info": {}}, tmp / "tokenizer.pt")
    return tmp / "tokenizer.pt"


CHECKPOINT_CASES: list[tuple[str, Callable[[Path, Path], Path], str]] = [
    ("empty file", lambda b, t: _written(t / "empty.pt", b""), "not a readable backbone checkpoint"),
    ("truncated file", lambda b, t: truncated_copy(b, t), "not a readable backbone checkpoint"),
    ("random bytes", lambda b, t: _written(t / "random.pt", np.random.default_rng(0).bytes(5000)),
     "not a readable backbone checkpoint"),
    ("text file", lambda b, t: _written(t / "notes.pt", b"dim: 64\nlayers: 3\n"),
     "not a readable backbone checkpoint"),
    ("another kind of torch file", _not_a_backbone, "not a jetfm backbone checkpoint"),
    ("a tokenizer given as backbone", _a_tokenizer, "not a jetfm backbone checkpoint"),
    ("missing file", lambda b, t: t / "nope.pt", "backbone checkpoint not found"),
]


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("make", "fragment"), [c[1:] for c in CHECKPOINT_CASES],
                         ids=[c[0] for c in CHECKPOINT_CASES])
def test_unusable_checkpoint_is_one_line_naming_the_file(
        jet_files: dict[str, Path], backbone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        make: Callable[[Path, Path], Path], fragment: str) -> None:
    bad, out = make(backbone, tmp_path), tmp_path / "result.json"
    code = main(_downstream_argv(jet_files, bad, out))
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and str(bad) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(("encoder", "named"), [
    (_ENCODER | {"dim": 32}, ("dim=32", "dim=16")),
    (_ENCODER | {"layers": 2, "registers": 3}, ("layers=2, registers=3", "layers=1, registers=1")),
    (_ENCODER | {"pair_bias": True}, ("pair_bias=True", "pair_bias=False")),
], ids=["width", "depth and registers", "pairwise bias"])
def test_checkpoint_of_another_architecture_is_refused_naming_both(
        jet_files: dict[str, Path], backbone: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        encoder: dict[str, Any], named: tuple[str, str]) -> None:
    out = tmp_path / "result.json"
    code = main(_downstream_argv(jet_files, backbone, out, encoder))
    err = capsys.readouterr().err
    assert code == 2 and "backbone 'mpm-reg' is configured with" in err and str(backbone) in err
    assert named[0] in err and named[1] in err and not out.exists()


def test_result_records_the_checkpoint_it_used(jet_files: dict[str, Path], backbone: Path,
                                               tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert main(_downstream_argv(jet_files, backbone, out)) == 0
    record = json.loads(out.read_text())["checkpoint"]
    assert record["path"] == str(backbone.resolve())
    assert record["sha256"] == hashlib.sha256(backbone.read_bytes()).hexdigest()
    assert {k: record["architecture"][k] for k in _ENCODER} == _ENCODER and record["method"] == "mpm-v2"
    made_by = torch.load(backbone, weights_only=False)["provenance"]["config_hash"]
    assert record["pretrain_config_hash"] == made_by


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not a state"])
def test_corrupt_resume_file_is_moved_aside_and_training_restarts(jet_files: dict[str, Path], backbone: Path,
                                                                   tmp_path: Path, damage: str) -> None:
    from jetfm.pretrain import pretrain_backbone

    out = tmp_path / "mpm-reg.pt"
    resume = Path(f"{out}.resume")
    if damage == "garbage":
        resume.write_bytes(b"\x00\x01 not a torch file")
    elif damage == "truncated":
        torch.save({"step": 2, "model": {f"w{i}": torch.randn(64, 64) for i in range(4)}}, resume)
        resume.write_bytes(resume.read_bytes()[:3000])
    else:
        torch.save([1, 2, 3], resume)
    steps: list[int] = []
    with pytest.warns(UserWarning, match=r"unreadable resume state.*restarts from step 0"):
        pretrain_backbone(jet_files["train"], jet_files["val"], {},
                          stage_params(_checkpoint_config(), "pretrain", backbone="mpm-reg"), out,
                          tmp_path / "metrics.csv", progress=False, on_step=steps.append)
    assert steps[0] == 1 and Path(f"{resume}.corrupt").exists() and not resume.exists()
    # trained from step 0, it is the uninterrupted run
    a, b = torch.load(out, weights_only=False), torch.load(backbone, weights_only=False)
    for key, value in a["encoder_state"].items():
        assert torch.equal(value, b["encoder_state"][key]), key


# --- signals: nothing left behind --------------------------------------------------------------

_WRITER = """
import os, signal, sys, time
from jetfm.provenance import atomic_output, exit_on_sigterm
exit_on_sigterm()
with atomic_output(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 1_000_000)
    print(tmp, flush=True)
    time.sleep(60)
"""


def _interruptible() -> None:
    """A child started from a background job inherits SIGINT ignored; give it Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_terminated_write_leaves_no_temporary_file(tmp_path: Path, signum: int) -> None:
    out = tmp_path / "jets.parquet"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=_interruptible)
    assert proc.stdout is not None
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists() and tmp.name == f".jets.parquet.tmp-{proc.pid}"
    proc.send_signal(signum)
    assert proc.wait(timeout=30) != 0
    assert not tmp.exists() and not out.exists()


def test_killed_write_leaves_a_temporary_file_the_next_write_removes(tmp_path: Path) -> None:
    from jetfm.provenance import atomic_output

    out = tmp_path / "jets.parquet"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    tmp = Path(proc.stdout.readline().strip())
    proc.kill()  # SIGKILL: no handler runs
    proc.wait(timeout=30)
    assert tmp.exists()
    live = tmp_path / f".jets.parquet.tmp-{os.getppid()}"  # a writer that still runs: kept
    live.write_bytes(b"")
    with atomic_output(out) as new:
        new.write_bytes(b"ok")
    assert out.read_bytes() == b"ok" and not tmp.exists() and live.exists()


def test_jets_job_failing_halfway_leaves_no_partial_set(
        event_files: dict[str, Path], small_config: dict, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import jetfm.jets.parquet_io as parquet_io

    written: list[Path] = []
    real = pq.write_table

    def fail_on_the_second(table: pa.Table, where: Path, **kwargs: Any) -> None:
        if written:
            raise OSError(28, "No space left on device")
        real(table, where, **kwargs)
        written.append(Path(where))

    monkeypatch.setattr(parquet_io.pq, "write_table", fail_on_the_second)
    outputs = _outputs(tmp_path)
    with pytest.raises(OSError, match="No space left"):
        build_jet_sets(list(event_files.values()), _jets_params(small_config), outputs, progress=False)
    assert written and not any(p.exists() for p in outputs.values())
    assert not list(tmp_path.glob(".*.tmp-*"))
