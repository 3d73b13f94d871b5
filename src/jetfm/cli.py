"""The `jetfm` command: one sub-command per pipeline stage, each one library call.

Every stage takes its settings either from a config file (``--config``, validated
against the schema; the default for running a stage by hand) or as the exact JSON that
the Snakemake rule passes (``--params``), so both paths run identical code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jetfm.config import ConfigError, load_config, stage_params
from jetfm.contract import BENCHMARKS, GENERATION_MODES, MODES, SAMPLES, SPLITS, TRAINED_BENCHMARKS
from jetfm.provenance import exit_on_sigterm


def _params(args: argparse.Namespace, stage: str, **wildcards: str) -> dict[str, Any]:
    if args.params:
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params is not valid JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise ConfigError("--params must be a JSON object (the stage's params), "
                              f"got {type(params).__name__}")
        return params
    return stage_params(load_config(args.config), stage, **wildcards)


def _threads(args: argparse.Namespace, stage: str) -> int:
    """--threads if given (Snakemake passes its rule threads), else the config's value."""
    if args.threads is not None:
        return args.threads
    if args.params:
        return 1
    cfg = load_config(args.config)
    return cfg["pretrain"]["threads"] if stage == "pretrain" else cfg["downstream"][args.benchmark]["threads"]


def _progress(args: argparse.Namespace) -> bool:
    return not args.quiet


def cmd_generate(args: argparse.Namespace) -> None:
    from jetfm.events import generate_shard

    n = generate_shard(_params(args, "generate", sample=args.sample, shard=args.shard), args.out,
                       n_events=args.events, progress=_progress(args))
    print(f"wrote {n} events to {args.out}")


def cmd_jets(args: argparse.Namespace) -> None:
    from jetfm.jets import build_jet_sets

    sizes = build_jet_sets(args.events, _params(args, "jets", sample=args.sample),
                           {"train": args.train, "val": args.val, "test": args.test},
                           progress=_progress(args))
    print("jets per split: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


def cmd_manifest(args: argparse.Namespace) -> None:
    from jetfm.jets.manifest import write_manifest

    manifest = write_manifest(args.shards, _params(args, "manifest", sample=args.sample, split=args.split),
                              args.out)
    per_class = zip(manifest["label_names"], manifest["per_class"], strict=True)
    print(f"{manifest['sample']} {manifest['split']}: {manifest['jets']} jets in {len(manifest['shards'])} "
          "shards, per class " + ", ".join(f"{name} {count}" for name, count in per_class))


def cmd_tokenize(args: argparse.Namespace) -> None:
    from jetfm.tokenize import fit_tokenizer

    tok = fit_tokenizer(args.train, args.val, _params(args, "tokenize", tokenizer=args.name), args.out,
                        args.report, threads=args.threads, progress=_progress(args))
    if _rank() != 0:  # rank 0 of a distributed fit reports
        return
    from jetfm.report.tokenizer import draw_tokenizer_figure

    draw_tokenizer_figure(args.out, args.val, Path(args.report).with_suffix(".png"))
    q = tok.info["quality"]
    print(f"tokenizer {args.name} ({tok.n_tokens} tokens): utilisation {q['utilisation']:.3f}, "
          f"perplexity {q['perplexity']:.1f}; report {args.report}")


def _tokenizer_files(pairs: list[str]) -> dict[str, str]:
    files = {}
    for pair in pairs:
        task, sep, path = pair.partition("=")
        if not sep or not task or not path:
            raise ConfigError(f"--tokenizer expects TASK=PATH (e.g. kmeans=models/tokenizers/kmeans.pt), "
                              f"got '{pair}'")
        files[task] = path
    return files


def cmd_pretrain(args: argparse.Namespace) -> None:
    from jetfm.pretrain import pretrain_backbone

    final = pretrain_backbone(args.train, args.val, _tokenizer_files(args.tokenizer),
                              _params(args, "pretrain", backbone=args.backbone),
                              args.out, args.metrics, threads=_threads(args, "pretrain"),
                              progress=_progress(args))
    if _rank() == 0:
        from jetfm.report.pretraining import plot_metrics_file

        plot_metrics_file(args.metrics, Path(args.metrics).with_suffix(".png"), title=args.backbone)
        print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(final.items())))


def cmd_launch(args: argparse.Namespace) -> None:
    from jetfm.distributed import launch_command

    command = list(args.command[1:] if args.command[:1] == ["--"] else args.command)
    if not command:
        raise ConfigError("jetfm launch needs a command to start, e.g. `jetfm launch --ranks-per-node 2 -- "
                          "pretrain --config config.yaml ...`")
    argv, env = launch_command(["-q", *command] if args.quiet else command, args.nodes, args.ranks_per_node)
    sys.stdout.flush()
    os.execvpe(argv[0], argv, os.environ | env)


def cmd_downstream(args: argparse.Namespace) -> None:
    from jetfm.downstream.run import run_benchmark

    params = _params(args, "downstream", benchmark=args.benchmark, backbone=args.backbone, mode=args.mode,
                     point=args.point, seed=str(args.seed))
    result = run_benchmark(params, args.train, args.val, args.test, args.checkpoint, args.out,
                           threads=_threads(args, "downstream"), progress=_progress(args),
                           tokenizer=args.tokenizer)
    if not result["rows"]:  # a rank other than 0 of a distributed run: rank 0 reports
        return
    row = result["rows"][0]
    bins = f" {row['bins']}" if "bins" in row else ""
    print(f"{result['benchmark']} {row['backbone']}/{row['mode']}/{args.point}/seed{row['seed']}: "
          f"{result['metric']} {row['value']:.4f}{bins}")


def cmd_generate_jets(args: argparse.Namespace) -> None:
    from jetfm.jet_generation import generate_jet_file

    params = _params(args, "generate_jets", backbone=args.backbone, seed=str(args.seed))
    params["seed"] = args.seed
    for key in ("temperature", "top_k", "batch_size"):
        if getattr(args, key) is not None:
            params["settings"][key] = getattr(args, key)
    table = generate_jet_file(params, args.checkpoint, args.out, n_jets=args.n_jets, reference=args.reference,
                              classes=args.classes, threads=args.threads, progress=_progress(args))
    counts = [int(n) for n in table.jets["n_constituents"]]
    print(f"wrote {table.n_jets} jets to {args.out}: constituents per jet {min(counts)}–{max(counts)}, "
          f"mean {sum(counts) / len(counts):.1f}")


def cmd_evaluate_generation(args: argparse.Namespace) -> None:
    from jetfm.jet_generation import evaluate_generation

    params = _params(args, "evaluate_generation", backbone=args.backbone, mode=args.mode, seed=str(args.seed))
    row = evaluate_generation(params, args.test, args.out, generated_file=args.generated,
                              checkpoint=args.checkpoint)["rows"][0]
    print(f"jet_generation {row['backbone']}/{row['mode']}/seed{row['seed']}: mean W1/σ {row['value']:.4f} "
          f"({row['n_eval']} jets vs {row['n_reference']})")
    for name, value in row["bins"].items():
        print(f"  {name:<18} W1/σ {value:.4f}  W1 {row['wasserstein'][name]:.4g}  KL {row['kl'][name]:.4f}")


def cmd_baselines(args: argparse.Namespace) -> None:
    from jetfm.downstream.baselines import write_baselines

    result = write_baselines(_params(args, "downstream_baselines", benchmark=args.benchmark),
                             args.train, args.test, args.out)
    for row in result["rows"]:
        print(f"{result['benchmark']} {row['backbone']}: {result['metric']} {row['value']:.4f}")


def cmd_plot(args: argparse.Namespace) -> None:
    from pathlib import Path

    from jetfm.report.benchmark_plots import plot_benchmark
    from jetfm.results import read_result

    print(f"wrote {plot_benchmark(read_result(args.result), Path(args.out))}")


def cmd_report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from jetfm.report.html_report import build_report

    config = json.loads(args.params) if args.params else load_config(args.config)
    figures: list[Path] = []
    for name in args.figures:  # a validation JSON stands for the figures it lists beside it
        path = Path(name)
        if path.suffix == ".json":
            figures += [path.parent / f for f in json.loads(path.read_text()).get("figures", [])]
        else:
            figures.append(path)
    build_report([Path(p) for p in args.results], [Path(p) for p in args.plots], figures, config,
                 Path(args.out))
    print(f"wrote {args.out}")


def cmd_aggregate(args: argparse.Namespace) -> None:
    from jetfm.report.summary import format_summary
    from jetfm.results import aggregate_results

    print(format_summary(aggregate_results(args.runs, args.benchmark, args.out, scale=args.scale)))


def cmd_summary(args: argparse.Namespace) -> None:
    """Print each result file's table; a file that is not a result file (a validation JSON, a
    tokenizer report, a missing file) is skipped with a one-line note on stderr. An error only when
    no file could be summarised."""
    import jsonschema

    from jetfm.report.summary import format_summary
    from jetfm.results import read_result

    done = 0
    for path in args.results:
        try:
            result = read_result(path)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            why = f"{where}: {exc.message}" if where else exc.message
            print(f"jetfm summary: skipped {path}: not a benchmark or run result file ({why}); "
                  "validation files are shown in results/report.html", file=sys.stderr)
            continue
        except (FileNotFoundError, ValueError) as exc:
            print(f"jetfm summary: skipped: {exc}", file=sys.stderr)
            continue
        if done:
            print()
        print(format_summary(result))
        done += 1
    if not done:
        raise ValueError(f"no result file to summarise in {' '.join(args.results)} (expected "
                         "results/BENCHMARK.json or results/runs/BENCHMARK/.../seedN.json)")


def cmd_validate(args: argparse.Namespace) -> None:
    if args.sample == "boosted":
        _validate_boosted(args)
        return
    from jetfm.report.validation import validate_btag

    if args.events is None or len(args.jets) != 1:
        raise ConfigError("validate --sample btag needs one --jets file and --events (a bb shard)")
    result = validate_btag(args.jets[0], args.events, args.out)
    for name, f in result["flavours"].items():
        print(f"{name:>5} jets: fraction {f['fraction']:.3f}, "
              f"median d0/σ {f['d0_significance_median']:+.2f}, "
              f"with a secondary vertex {f['fraction_with_secondary_vertex']:.3f}")
    for pdg, c in result["b_hadron_ctau"].items():
        if c["n"]:
            print(f"cτ(|id| {pdg}) = {c['mean_mm']:.3f} mm from {c['n']} decays (PDG {c['expected_mm']} mm)")
    print(f"figures: {', '.join(result['figures'])}")


def _validate_boosted(args: argparse.Namespace) -> None:
    from jetfm.report.validation_boosted import validate_boosted

    result = validate_boosted(args.jets, args.out)
    for name, c in result["classes"].items():
        if not c["n_jets"]:
            print(f"{name:>5}: no jets")
            continue
        expected = f" (expected {c['expected_mass_gev']})" if c["expected_mass_gev"] else ""
        print(f"{name:>5}: {c['n_jets']:6d} jets, mass peak {c['mass_peak_gev']:6.1f} GeV{expected}, "
              f"median constituents {c['constituents_median']:5.1f}, "
              f"τ21 {c['tau21_median']:.2f}, τ32 {c['tau32_median']:.2f}")
    print(f"figures: {', '.join(result['figures'])}")


def cmd_check_config(args: argparse.Namespace) -> None:
    import yaml

    cfg = load_config(args.config)
    print(yaml.safe_dump(cfg, sort_keys=False) if args.show else f"{args.config}: valid")


def cmd_config_docs(args: argparse.Namespace) -> None:
    from jetfm.config_docs import render_config_docs

    sys.stdout.write(render_config_docs())


# what the DAG passes as a stage's jets: a split's manifest; a single Parquet file also works
_JETS_HELP = ("{what}: a split's manifest (data/jets/SAMPLE/{split}.json, listing its shards) "
              "or a jet Parquet file")


def _add_params_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--config", default="config.yaml", help="config file (default: config.yaml)")
    group.add_argument("--params", help="the stage's resolved parameters as JSON (what Snakemake passes)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jetfm", description=__doc__.split("\n")[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add("generate", cmd_generate, "Generate one shard of Pythia8 events into a ROOT file.")
    _add_params_options(p)
    p.add_argument("--sample", choices=SAMPLES, default="btag", help="which sample (default: btag)")
    p.add_argument("--shard", required=True, help="shard name, e.g. bb-000 or hbb-000 (process-index)")
    p.add_argument("--events", type=int, help="override samples.<sample>.generate.events_per_shard")
    p.add_argument("--out", required=True, help="output ROOT file")

    p = add("jets", cmd_jets,
            "Cluster jets, simulate tracking, label truth; write one shard's Parquet splits.")
    _add_params_options(p)
    p.add_argument("--sample", choices=SAMPLES, default="btag", help="which sample (default: btag)")
    p.add_argument("--events", nargs="+", required=True,
                   help="input ROOT files (usually one shard): jetfm event files or public-dataset files")
    p.add_argument("--train", required=True,
                   help="training jets to write (data/jets/SAMPLE/train/SHARD.parquet)")
    p.add_argument("--val", required=True, help="validation jets to write")
    p.add_argument("--test", required=True, help="test jets to write")

    p = add("manifest", cmd_manifest,
            "List a split's jet shards, their jets per class and the class allotment "
            "(data/jets/SAMPLE/SPLIT.json).")
    _add_params_options(p)
    p.add_argument("--sample", choices=SAMPLES, default="btag", help="which sample (default: btag)")
    p.add_argument("--split", choices=SPLITS, required=True, help="which split")
    p.add_argument("--shards", nargs="+", required=True,
                   help="the split's jet Parquet shards (data/jets/SAMPLE/SPLIT/SHARD.parquet)")
    p.add_argument("--out", required=True, help="manifest to write (.json)")

    p = add("tokenize", cmd_tokenize,
            "Fit a constituent tokenizer (K-Means or VQ-VAE) and write its quality report.")
    _add_params_options(p)
    p.add_argument("--name", required=True, help="tokenizer name (key of `tokenizers`)")
    p.add_argument("--train", required=True,
                   help="training jets: a split's manifest (.json) or a Parquet file")
    p.add_argument("--val", required=True,
                   help="validation jets (quality report): a split's manifest (.json) or a Parquet file")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--out", required=True, help="tokenizer file to write (.pt)")
    p.add_argument("--report", required=True, help="quality report to write (.json; a .png beside it)")

    p = add("pretrain", cmd_pretrain,
            "Pre-train a backbone (MPMv1, MPMv2 with any of id/reg/kmeans/vqvae/cnf/cfm/ssfm, "
            "or OmniJet-α gpt).")
    _add_params_options(p)
    p.add_argument("--backbone", required=True, help="backbone name (key of `backbones`)")
    p.add_argument("--train", required=True, help=_JETS_HELP.format(what="training jets", split="train"))
    p.add_argument("--val", required=True,
                   help=_JETS_HELP.format(what="validation jets (validation loss)", split="val"))
    p.add_argument("--tokenizer", action="append", default=[], metavar="TASK=PATH",
                   help="tokenizer file of a token task, e.g. kmeans=models/tokenizers/kmeans.pt "
                   "(repeatable)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.add_argument("--metrics", required=True, help="per-step metrics CSV to write (a .png plot beside it)")
    p.add_argument("--threads", type=int, help="CPU threads (default: pretrain.threads)")

    p = add("launch", cmd_launch,
            "Start a training command on several ranks (DDP): torchrun on this machine, srun inside a "
            "SLURM allocation; one rank runs the command itself.")
    p.add_argument("--nodes", type=int, default=1, help="nodes (several need SLURM)")
    p.add_argument("--ranks-per-node", type=int, default=1,
                   help="processes per node: one per GPU, or CPU processes (gloo)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the jetfm command and its options, after --")

    p = add("downstream", cmd_downstream,
            "Train and score one downstream run (benchmark, backbone, mode, sweep point, seed).")
    _add_params_options(p)
    p.add_argument("--benchmark", required=True, choices=TRAINED_BENCHMARKS,
                   help="a benchmark that trains a head (generation is scored by generate-jets and "
                   "evaluate-generation)")
    p.add_argument("--backbone", required=True,
                   help="backbone (key of `backbones`) or reference model (key of `references`, e.g. part)")
    p.add_argument("--mode", required=True, choices=MODES,
                   help="how the backbone is used: trained from scratch, frozen (fixed), fine-tuned; "
                   "supervised: cwola_sic's fully labelled reference")
    p.add_argument("--point", default="all",
                   help="sweep point: all, n<training jets> (e.g. n1000) or, for cwola_sic, s<signal jets>")
    p.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    p.add_argument("--train", required=True, help=_JETS_HELP.format(what="training jets", split="train"))
    p.add_argument("--val", required=True,
                   help=_JETS_HELP.format(what="validation jets (early stopping, selection)", split="val"))
    p.add_argument("--test", required=True,
                   help=_JETS_HELP.format(what="test jets (the score)", split="test"))
    p.add_argument("--checkpoint", help="backbone checkpoint (not used in scratch / supervised mode)")
    p.add_argument("--tokenizer", help="scratch mode of a gpt backbone: its tokenizer file")
    p.add_argument("--threads", type=int, help="CPU threads (default: downstream.<benchmark>.threads)")
    p.add_argument("--out", required=True, help="per-run result JSON to write")

    p = add("generate-jets", cmd_generate_jets,
            "Sample jets from a gpt (OmniJet-α) backbone; write them as a Parquet jet set.")
    _add_params_options(p)
    p.add_argument("--backbone", required=True, help="backbone name (recorded in the file)")
    p.add_argument("--checkpoint", required=True, help="the backbone's checkpoint (models/backbones/NAME.pt)")
    how_many = p.add_mutually_exclusive_group(required=True)
    how_many.add_argument("--n-jets", type=int, help="number of jets to generate")
    how_many.add_argument("--reference", help="test jets (data/jets/SAMPLE/test.json, a split's manifest, or "
                          "a Parquet file): generate as many jets as its second half holds "
                          "(and, class-conditional, with its classes), as the jet_generation benchmark does")
    p.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="class-conditional backbone: generate this class (repeatable: equal shares)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=float, help="override downstream.jet_generation.temperature")
    p.add_argument("--top-k", dest="top_k", type=int, help="override downstream.jet_generation.top_k")
    p.add_argument("--batch-size", dest="batch_size", type=int,
                   help="override downstream.jet_generation.batch_size")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--out", required=True, help="Parquet jet file to write")

    p = add("evaluate-generation", cmd_evaluate_generation,
            "Score generated jets, or a gpt backbone's tokenizer reconstruction, against true test jets.")
    _add_params_options(p)
    p.add_argument("--backbone", required=True, help="backbone name")
    p.add_argument("--mode", required=True, choices=GENERATION_MODES,
                   help="generated: a generate-jets file; reconstructed: the second test half through the "
                   "backbone's tokenizer")
    p.add_argument("--seed", type=int, default=0, help="the sampling seed of the generated file (recorded)")
    p.add_argument("--test", required=True,
                   help=_JETS_HELP.format(what="true test jets", split="test"))
    p.add_argument("--generated",
                   help="mode generated: the generated jets (data/generated/BACKBONE/seedN.parquet)")
    p.add_argument("--checkpoint", help="the backbone checkpoint: its tokenizer reconstructs the true jets "
                   "(the reference of generated jets, the ceiling)")
    p.add_argument("--out", required=True, help="per-run result JSON to write")

    p = add("baselines", cmd_baselines, "Score the trivial answers of a benchmark (majority class, ...).")
    _add_params_options(p)
    p.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    p.add_argument("--train", required=True, help=_JETS_HELP.format(what="training jets", split="train"))
    p.add_argument("--test", required=True, help=_JETS_HELP.format(what="test jets", split="test"))
    p.add_argument("--out", required=True, help="run file to write (results/runs/BENCHMARK/baselines.json)")

    p = add("plot", cmd_plot, "Plot an aggregated benchmark result (curves with seed bands, ROC, confusion).")
    p.add_argument("--result", required=True, help="results/{benchmark}.json")
    p.add_argument("--out", required=True, help="PNG to write")

    p = add("report", cmd_report, "Write the HTML report: every result, plot and figure, with the config.")
    _add_params_options(p)
    p.add_argument("--results", nargs="+", required=True, help="aggregated result files")
    p.add_argument("--plots", nargs="*", default=[], help="benchmark plots")
    p.add_argument("--figures", nargs="*", default=[],
                   help="other figures (pre-training, tokenizers: .png); a validation JSON "
                   "(results/validation/SAMPLE.json) stands for the figures it lists")
    p.add_argument("--out", required=True, help="HTML file to write")

    p = add("aggregate", cmd_aggregate, "Collect per-run results into results/{benchmark}.json.")
    p.add_argument("--benchmark", required=True, help="the runs' benchmark")
    p.add_argument("--out", required=True, help="benchmark result file to write (results/BENCHMARK.json)")
    p.add_argument("--scale", help="the config's scale (tiny, demo, study, paper): the table's tier")
    p.add_argument("runs", nargs="+", help="per-run result files (results/runs/BENCHMARK/.../seedN.json, "
                   "baselines.json)")

    p = add("validate", cmd_validate, "Physics validation of a sample: numbers and plots.")
    p.add_argument("--sample", choices=SAMPLES, default="btag", help="which sample (default: btag)")
    p.add_argument("--jets", nargs="+", required=True,
                   help="jets, each a split's manifest (data/jets/SAMPLE/SPLIT.json) or a Parquet file: "
                   "btag takes one (e.g. the test split), boosted any number")
    p.add_argument("--events", help="btag only: one ROOT event file (b-hadron lifetimes, Δ++, pz)")
    p.add_argument("--out", required=True, help="validation JSON; figures are written beside it")

    p = add("summary", cmd_summary,
            "Print the headline table of result files: per backbone, mode and sweep point the seeds, "
            "mean ± std, how the runs stopped (patience or step maximum) and per-bin means.")
    p.add_argument("results", nargs="+",
                   help="result files: results/BENCHMARK.json or per-run files; other JSON files "
                   "(validation, tokenizer reports) are skipped with a note")

    p = add("check-config", cmd_check_config, "Validate a config file against the schema.")
    p.add_argument("config", nargs="?", default="config.yaml")
    p.add_argument("--show", action="store_true", help="print the config with defaults filled in")

    add("config-docs", cmd_config_docs, "Print the configuration reference (docs/config.md).")
    return parser


def _rank() -> int:
    """This process's rank when a launcher (torchrun, or srun under `jetfm launch`) started
    several, else 0."""
    from jetfm.distributed import world_from_environment

    return world_from_environment().rank


def _who(command: str) -> str:
    """How an error names the command; one of several ranks names itself too, so that the
    launcher's output shows which rank failed."""
    if "WORLD_SIZE" not in os.environ and "JETFM_LAUNCHER" not in os.environ:
        return f"jetfm {command}"  # started alone: no rank to name (and no torch to import)
    from jetfm.distributed import world_from_environment

    try:
        world = world_from_environment()
    except RuntimeError:  # the launcher's variables are the error itself
        return f"jetfm {command}"
    return f"jetfm {command}" + (f" (rank {world.rank} of {world.size})" if world.distributed else "")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    exit_on_sigterm()  # a terminated job removes its temporary files
    try:
        args.func(args)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        print(f"{_who(args.command)}: error: {exc}", file=sys.stderr)
        _report_to_launcher(exc)
        return 2
    except KeyError as exc:  # hand-written --params without an entry the stage reads
        print(f"{_who(args.command)}: error: missing entry {exc} in the stage's params", file=sys.stderr)
        _report_to_launcher(exc)
        return 2
    except BaseException as exc:
        _report_to_launcher(exc)
        raise
    return 0


def _report_to_launcher(exc: BaseException) -> None:
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):  # started by torchrun: it names the first failure
        from jetfm.distributed import report_to_launcher

        report_to_launcher(exc)


if __name__ == "__main__":
    sys.exit(main())
