"""One generation shard: Pythia8 → hadron-level record → ROOT file."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from tqdm import tqdm

from jetfm.events.processes import pythia_settings
from jetfm.events.record import ChargeTable, batch_to_columns
from jetfm.events.root_io import EventWriter
from jetfm.provenance import atomic_output, provenance

# Events per nextBatch call and per ROOT basket: large baskets read back fast (uproot's
# per-basket overhead), while a batch of records stays a few hundred MB.
_BATCH = 1000
_PYTHIA_SEED_MAX = 900_000_000


def shard_seed(base_seed: int, process: str, index: int) -> int:
    """Pythia seed of one shard: distinct per (seed, process, shard), never 0 (= clock)."""
    digest = hashlib.sha256(f"{base_seed}:{process}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (_PYTHIA_SEED_MAX - 1) + 1


def generate_shard(params: dict[str, Any], out: str | Path, n_events: int | None = None,
                   progress: bool = True) -> int:
    """Generate one shard described by ``stage_params(cfg, 'generate', shard=...)``.

    Returns the number of events written.
    """
    import pythia8mc

    gen = params["generate"]
    n_events = gen["events_per_shard"] if n_events is None else n_events
    if n_events < 1:
        raise ValueError(f"number of events must be positive, got {n_events}")
    sample, process, index = params["sample"], params["process"], params["shard_index"]
    seed = shard_seed(gen["seed"], process, index)
    settings = pythia_settings(gen, sample, process, index, seed)

    pythia = pythia8mc.Pythia("", False)  # no banner
    for line in settings:
        if not pythia.readString(line):
            raise ValueError(f"Pythia rejected setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"Pythia initialisation failed for shard {process}-{index:03d}")
    charge_of = ChargeTable(pythia.particleData)

    meta = provenance("generate", params) | {"pythia_seed": seed, "pythia_settings": settings}
    file_uuid = uuid.UUID(bytes=hashlib.sha256(str(seed).encode()).digest()[:16])
    bar = tqdm(total=n_events, desc=f"generate {process}-{index:03d}", unit="ev",
               disable=not progress, mininterval=2.0)
    with atomic_output(out) as tmp, EventWriter(tmp, file_uuid, meta) as writer:
        while writer.n_events < n_events:
            batch = pythia.nextBatch(min(_BATCH, n_events - writer.n_events))
            if len(batch) == 0:
                raise RuntimeError("Pythia produced no events in a whole batch; check the settings")
            counts, columns = batch_to_columns(batch, charge_of, gen["record"] == "full")
            writer.extend(counts, columns)
            bar.update(len(counts))
    bar.close()
    return writer.n_events
