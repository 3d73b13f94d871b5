"""The data contract (jetfm.contract) against the config schema, the process catalogue and the
readers, and reading a jet set without the event-level stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from jetfm import contract
from jetfm.events.processes import BOOSTED_PROCESSES, BTAG_PROCESSES
from jetfm.jets.truth import pid_class

SCHEMA = Path(__file__).parents[1] / "src" / "jetfm" / "config.schema.yaml"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _samples(schema: dict) -> dict:
    return schema["properties"]["samples"]["properties"]


def test_schema_samples_and_processes_are_the_contracts(schema: dict) -> None:
    assert tuple(_samples(schema)) == contract.SAMPLES
    btag, boosted = (_samples(schema)[s]["properties"] for s in contract.SAMPLES)
    assert tuple(btag["generate"]["properties"]["shards"]["properties"]) == contract.BTAG_PROCESS_NAMES
    boosted_shards = boosted["generate"]["properties"]["shards"]["properties"]
    assert tuple(boosted_shards) == tuple(contract.BOOSTED_PROCESS_LABELS)
    assert tuple(btag["jets"]["properties"]["fractions"]["properties"]) == contract.BTAG_LABEL_NAMES
    assert (boosted["jets"]["properties"]["fractions"]["propertyNames"]["enum"]
            == list(contract.BOOSTED_PROCESS_LABELS))
    for section in ("tokenizers", "backbones"):
        entry = schema["properties"][section]["additionalProperties"]["properties"]
        assert tuple(entry["sample"]["enum"]) == contract.SAMPLES
    features = schema["properties"]["tokenizers"]["additionalProperties"]["properties"]["features"]
    assert tuple(features["items"]["enum"]) == contract.CONTINUOUS_FEATURES
    assert tuple(features["default"]) == contract.CONTINUOUS_FEATURES


def test_schema_benchmarks_and_modes_are_the_contracts(schema: dict) -> None:
    downstream = schema["properties"]["downstream"]["properties"]
    assert tuple(downstream) == contract.BENCHMARKS
    for name in contract.TRAINED_BENCHMARKS:
        modes = downstream[name]["properties"]["modes"]["items"]["enum"]
        # supervised is not a sweep mode: CWoLa's reference, switched by `supervised`
        assert tuple(modes) == tuple(m for m in contract.MODES if m != "supervised")
    cwola = downstream["cwola_sic"]["properties"]
    assert cwola["signal"]["default"] in contract.BOOSTED_LABEL_NAMES
    assert cwola["background"]["default"] in contract.BOOSTED_LABEL_NAMES


def test_process_catalogue_is_the_contracts() -> None:
    assert tuple(BTAG_PROCESSES) == contract.BTAG_PROCESS_NAMES
    assert tuple(BOOSTED_PROCESSES) == tuple(contract.BOOSTED_PROCESS_LABELS)
    # process k makes class k, and the class names are the process names in JetClass spelling
    assert list(contract.BOOSTED_PROCESS_LABELS.values()) == list(range(len(contract.BOOSTED_LABEL_NAMES)))
    assert [n.lower() for n in contract.BOOSTED_LABEL_NAMES] == list(contract.BOOSTED_PROCESS_LABELS)


def test_label_and_origin_codes_index_their_names() -> None:
    names = contract.BTAG_LABEL_NAMES
    codes = (contract.LABEL_LIGHT, contract.LABEL_C, contract.LABEL_B)
    assert tuple(names[c] for c in codes) == ("light", "c", "b")
    origins = contract.ORIGIN_NAMES
    assert [origins[c] for c in (contract.ORIGIN_PRIMARY, contract.ORIGIN_C, contract.ORIGIN_B,
                                 contract.ORIGIN_OTHER)] == ["primary", "c", "b", "other"]
    assert contract.LABEL_NAMES == {"btag": contract.BTAG_LABEL_NAMES,
                                   "boosted": contract.BOOSTED_LABEL_NAMES}


def test_pid_classes_name_the_particles() -> None:
    pdg = np.array([22, -211, 130, 321, 11, -11, 13, -13])
    charge = np.array([0, -1, 0, 1, -1, 1, -1, 1])
    got = [contract.PID_NAMES[k] for k in pid_class(pdg, charge)]
    assert got == ["photon", "h-", "h0", "h+", "e-", "e+", "mu-", "mu+"]
    assert contract.N_PID_CLASSES == 8


def test_parquet_schema_covers_the_model_features() -> None:
    assert set(contract.CONTINUOUS_FEATURES) <= set(contract.CONSTITUENT_FIELDS)
    assert {"pid", "vertex", "origin"} <= set(contract.CONSTITUENT_FIELDS)
    assert {"jet_pt", "jet_eta", "jet_phi", "jet_mass", "label"} <= set(contract.JET_COLUMNS)


_READ_ONLY = """
import json, sys
import numpy as np
from jetfm.contract import CONSTITUENT_FIELDS, JET_COLUMNS
from jetfm.data import pad_jets
from jetfm.jets import JetTable, read_jet_table, write_jet_table

path = sys.argv[1]
n, per = 3, 4
jets = {k: np.arange(n).astype(t) + 1 for k, t in JET_COLUMNS.items()}
jets["n_constituents"] = np.full(n, per, np.int16)
jets["label"] = np.arange(n).astype(np.int8)  # light, c, b
tracks = {k: np.ones(n * per, t) for k, t in CONSTITUENT_FIELDS.items()}
table = JetTable.from_flat(jets, tracks, np.repeat(np.arange(n), per), np.ones(n, bool))
write_jet_table(table, path, {"config": {"sample": "btag"}, "split": "train"})
padded = pad_jets(read_jet_table(path))
# a split's manifest, read whole and streamed
from jetfm.data.stream import JetStream
from jetfm.jets.manifest import write_manifest

manifest = path.replace(".parquet", ".json")
write_manifest([path], {"sample": "btag", "split": "train", "fractions": None}, manifest)
assert pad_jets(read_jet_table(manifest)).mask.shape == padded.mask.shape
assert len(next(iter(JetStream(manifest, batch_size=2)))) == 2
heavy = sorted(m for m in ("fastjet", "uproot", "pythia8", "pythia8mc", "vector", "awkward")
               if m in sys.modules)
print(json.dumps({"shape": list(padded.mask.shape), "heavy": heavy}))
"""


def test_reading_a_jet_set_needs_no_event_stack(tmp_path: Path) -> None:
    """A fresh interpreter writes and reads a jet set, also through a manifest and the streaming
    loader: fastjet, uproot, Pythia, vector and awkward are never imported."""
    out = subprocess.run([sys.executable, "-c", _READ_ONLY, str(tmp_path / "jets.parquet")],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [3, 4]
    assert result["heavy"] == []
