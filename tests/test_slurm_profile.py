"""Run the tiny workflow through a real SLURM cluster with ``profiles/slurm``.

A single-node cluster (slurmctld + slurmd + munged, one fake GPU) is brought up
on this machine by ``tests/slurm/start_cluster.sh``; this needs root and either
installed ``slurm-wlm``/``munge`` packages or a working apt. Because it installs
packages and starts daemons, it runs only under ``CI=true`` or with
``JETFM_TEST_SLURM=1``; where it cannot run it is skipped, except under CI, where
it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
TARGET = "results/btag_vertex_ari.json"
CONFIGFILE = "config/tiny.yaml"
PROFILE = "profiles/slurm"
START = REPO / "tests" / "slurm" / "start_cluster.sh"
STOP = REPO / "tests" / "slurm" / "stop_cluster.sh"
TIMEOUT_S = 900
# Rules that must have been run as SLURM jobs, and those that must hold a GPU.
SLURM_RULES = {"generate", "jets", "tokenize", "pretrain", "downstream", "baselines"}
GPU_RULES = {"pretrain", "downstream"}
# Job groups of profiles/slurm (one SLURM job for several runs) and the rule they pack
GROUPS = {"downstream-runs": "downstream"}
# The target's downstream runs (tiny.yaml: mpm-kmeans in three modes, one seed)
DOWNSTREAM_RUNS = 3
# Copied when git cannot list the sources; outputs are never copied, so that
# every job has to run (on SLURM) again.
WORKFLOW_FILES = ["Snakefile", "config.yaml", "config", "workflow", "profiles", "benchmarks", "envs"]

# Test-only executor settings on top of the profile: the test cluster has no
# accounting database (sacct fails, so job status must come from squeue), the
# logs of successful jobs are inspected afterwards, and short status intervals
# keep the run fast.
EXTRA_ARGS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-keep-successful-logs",
    "--slurm-init-seconds-before-status-checks",
    "5",
]

# a group job's Snakemake id is a UUID
SUBMITTED_RE = re.compile(r"Job [\w-]+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")
RULE_RE = re.compile(r"^(local)?rule (\w+):$", re.MULTILINE)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"SLURM test cannot run under CI: {reason}")
    pytest.skip(reason)


def _controller_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.environ.get("CI") != "true" and os.environ.get("JETFM_TEST_SLURM") != "1":
        pytest.skip("brings up a local SLURM cluster (root, apt): set JETFM_TEST_SLURM=1 to run it")
    if os.geteuid() != 0:
        _unavailable("needs root to install and start SLURM daemons")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        _unavailable("SLURM is not installed and apt-get is not available")
    was_running = _controller_up()
    proc = subprocess.run(["bash", str(START)], capture_output=True, text=True, timeout=600)
    if proc.returncode == 3:
        _unavailable(f"SLURM unusable on this machine:\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, f"start_cluster.sh failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    yield proc.stdout
    # Leave a cluster that was already up (e.g. a developer's) as it was.
    if not was_running:
        subprocess.run(["bash", str(STOP)], capture_output=True, text=True, timeout=120)


def _source_files() -> list[str] | None:
    """The checkout's files, tracked or untracked but not ignored; None without git."""
    if shutil.which("git") is None:
        return None
    listing = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        return None
    return [rel for rel in listing.stdout.split("\0") if rel]


def _copy_workflow(dest: Path) -> None:
    files = _source_files()
    if files:
        for rel in files:
            if (REPO / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, dest / rel)
        return
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)


def _scontrol_jobs() -> dict[str, dict[str, str]]:
    out = subprocess.run(
        ["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True
    ).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if "JobId" in fields:
            jobs[fields["JobId"]] = fields
    return jobs


def _workdir_and_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the workflow, and the environment its SLURM jobs inherit."""
    workdir = (tmp_path / "wf").resolve()
    workdir.mkdir()
    _copy_workflow(workdir)
    env = dict(os.environ)
    env["JETFM_SLURM_PARTITION"] = "main"
    env.pop("JETFM_SLURM_ACCOUNT", None)
    # Jobs inherit this environment (sbatch --export=ALL): make the venv's
    # snakemake and console scripts resolvable inside them.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for key in [k for k in env if k.startswith("SLURM_")]:
        del env[key]
    return workdir, env


def test_workflow_runs_on_slurm(slurm_cluster, tmp_path):
    workdir, env = _workdir_and_env(tmp_path)

    # device auto, as on a GPU cluster: the training jobs ask for a GPU (the test cluster's is
    # fake, so jetfm falls back to the CPU inside them); with device: cpu they ask for none
    (workdir / "gpu.yaml").write_text("device: auto\n")
    # The target goes before --configfile, which would swallow it (nargs="+").
    cmd = [
        sys.executable, "-m", "snakemake", TARGET,
        "--profile", PROFILE,
        "--configfile", CONFIGFILE, "gpu.yaml",
        *EXTRA_ARGS,
    ]  # fmt: skip
    log_path = tmp_path / "snakemake.log"
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            proc = None
    output = log_path.read_text()
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    if proc is None:
        if run_id:  # jobs are named after the run ID
            subprocess.run(["scancel", "--name", run_id.group(1)], check=False)
        pytest.fail(f"snakemake timed out after {TIMEOUT_S}s:\n{output[-6000:]}")

    assert proc.returncode == 0, f"snakemake failed:\n{output[-8000:]}"
    assert (workdir / TARGET).is_file()
    assert run_id, "executor did not report a SLURM run ID"

    # Every non-local job went through sbatch and left its SLURM log behind.
    submitted = {jobid: Path(logfile) for jobid, logfile in SUBMITTED_RE.findall(output)}
    assert submitted, f"no job was submitted to SLURM:\n{output[-4000:]}"
    for logfile in submitted.values():
        assert logfile.is_file(), f"missing SLURM log {logfile}"
    rules_run = {name for local, name in RULE_RE.findall(output) if not local}
    # Logs live in .snakemake/slurm_logs/rule_<name>/[<wildcards>/]<jobid>.log, and a packed job
    # group's in .snakemake/slurm_logs/group_<group>/<jobid>.log
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    log_dirs = {jobid: logfile.relative_to(slurm_logs).parts[0] for jobid, logfile in submitted.items()}
    rules_submitted = {GROUPS[d.removeprefix("group_").split("_")[0]] if d.startswith("group_")
                       else d.removeprefix("rule_") for d in log_dirs.values()}
    assert rules_run | {"downstream"} == rules_submitted, (rules_run, rules_submitted)
    assert SLURM_RULES <= rules_submitted, SLURM_RULES - rules_submitted

    # The downstream runs of the benchmark went out packed: one SLURM job ran all of them.
    packed = [jobid for jobid, d in log_dirs.items() if d.startswith("group_downstream-runs")]
    assert len(packed) == 1, log_dirs
    assert not any(d == "rule_downstream" for d in log_dirs.values()), log_dirs
    runs = sorted((workdir / "results" / "runs" / "btag_vertex_ari").rglob("seed*.json"))
    assert len(runs) == DOWNSTREAM_RUNS, runs
    inner = submitted[packed[0]].read_text()
    assert len(re.findall(r"^localrule downstream:$", inner, re.MULTILINE)) == DOWNSTREAM_RUNS, inner[-4000:]

    # SLURM itself saw the jobs, as completed, with the GPU the profile asks for.
    jobs = _scontrol_jobs()
    for jobid in submitted:
        job = jobs.get(jobid)
        assert job is not None, f"SLURM job {jobid} unknown to slurmctld"
        assert job["JobName"] == run_id.group(1)
        assert job["JobState"] == "COMPLETED", job
        rule = job["Comment"].removeprefix("rule_").split("_wildcards_")[0]
        rule = GROUPS.get(rule.split("_")[0], rule)
        gpus = job.get("TresPerJob", "") + job.get("TresPerNode", "")
        if rule in GPU_RULES:  # one GPU, for a packed group too
            assert "gpu:1" in gpus, job
        else:
            assert "gpu" not in gpus, job


def test_pretraining_on_two_slurm_tasks_matches_one_process(slurm_cluster, tmp_path):
    """pretrain.resources asks for two ranks: the SLURM job holds two tasks, srun starts them, they
    train as one DDP group (gloo: tiny.yaml trains on the CPU) and the checkpoint is the one a
    single process makes."""
    import torch
    import yaml

    workdir, env = _workdir_and_env(tmp_path)
    target = "models/backbones/mpm-kmeans.pt"
    # one process, on this machine
    local = subprocess.run([sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile",
                            CONFIGFILE], cwd=workdir, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT_S)
    assert local.returncode == 0, local.stderr[-4000:]
    one = torch.load(workdir / target, weights_only=False)
    (workdir / "ranks.yaml").write_text(yaml.safe_dump({"pretrain": {"resources": {"gpus_per_node": 2}}}))
    cmd = [sys.executable, "-m", "snakemake", target, "--profile", PROFILE, "--configfile", CONFIGFILE,
           "ranks.yaml", *EXTRA_ARGS]
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake failed:\n{output[-8000:]}"
    submitted = SUBMITTED_RE.findall(output)
    assert len(submitted) == 1, output[-4000:]  # only the pre-training re-ran: its launcher changed
    job = _scontrol_jobs()[submitted[0][0]]
    assert job["JobState"] == "COMPLETED" and job["NumTasks"] == "2", job
    two = torch.load(workdir / target, weights_only=False)
    assert one["ranks"] == 1 and two["ranks"] == 2
    for key, value in one["model_state"].items():
        torch.testing.assert_close(two["model_state"][key], value, rtol=0, atol=1e-6, msg=key)
