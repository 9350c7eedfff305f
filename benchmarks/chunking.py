"""CoNLL tagging: the chunking recipe's energy fitted by each objective, beside a feature CRF.

Every neural method is trained by the same code path as ``structebm fit``
(:func:`structebm.cli.build_cli`) from the recipe's own YAML, ``recipes/chunking/base.yaml``,
then the ``--config`` files given (a task, e.g. ``pos_conll2000.yaml``), then the method's:

- ``exact_nll`` — ``exact_nll.yaml``: maximum likelihood with the exact ``log Z(c)``;
- ``pcd`` — ``pcd.yaml``: contrastive divergence, Gibbs sweeps over ``y`` from the gold tags;
- ``nce`` — ``nce.yaml``: conditional NCE in its ranking form against a lagged copy of the CRF;
- ``binary_nce`` — ``binary_nce.yaml``: binary NCE with a learned scalar ``log Z`` against
  near-uniform tag noise (batches padded to 80 tokens);
- ``minilm`` — ``exact_nll.yaml`` + ``minilm.yaml``: exact NLL with the frozen MiniLM word features;
- ``crfsuite`` — sklearn-crfsuite with hand-crafted features (:mod:`benchmarks.peers.crfsuite_peer`)
  on the sentences of the same data module (same files, columns and sentence caps), its features
  built from the words and the data's extra input columns only.

Flags only override config keys: ``--train`` / ``--test`` → ``data.init_args.train_path`` /
``test_path``; ``--word-column``, ``--tag-column`` → ``data.init_args.word_column``,
``tag_column``; ``--extra-columns NAME=N ...`` → ``data.init_args.extra_columns`` (the flag
with no ``NAME=N``: words alone); ``--max-train-sentences`` / ``--max-test-sentences`` → the data's caps;
``--max-steps`` → ``trainer.max_steps``; ``--epochs`` → ``trainer.max_epochs`` (and no step cap
unless ``--max-steps`` is given); ``--seed`` → ``seed_everything``; ``--override KEY=VALUE`` →
any other key, as for ``structebm fit``, applied to every method (an entry of a list by its
number, as in ``benchmarks/_recipe_runs.py``). The data module sets the tag count and the model's
extra columns from the files (:meth:`~structebm.data.chunking.ChunkingDataModule.model_settings`).

The training budget is a number of steps, not seconds, so that it does not depend on the load of
the machine. Without ``--max-steps`` or ``--epochs`` each method trains for the steps that
``--budget-minutes`` (default 30) of training bought it on CoNLL-2000 (batch 32, 280 steps an
epoch) in the run of 2026-11-30 in ``docs/results/chunking.md`` (two methods at a time on a
2-core CPU, one thread each), :data:`THIRTY_MINUTE_STEPS` scaled by ``budget_minutes / 30``
(the recipe's 30 epochs stop it first on smaller data; MiniLM's encoding, a fixed cost, is
scaled with the rest). A wall-clock cap, if wanted, is Lightning's own:
``--override trainer.max_time=00:00:30:00``.

Scores: the recipe's :class:`~structebm.training.tagging_report.TaggingReport` (Viterbi on the
test split) for the neural methods, :func:`~structebm.evaluation.tagging.tagging_scores` for
crfsuite, with the tag scheme recognised from the data's tags: chunk ``f1`` / ``precision`` /
``recall`` for BIO / BIOES tags, ``token_accuracy`` (and ``macro_f1``) for plain tag sets
(part-of-speech tags). ``train_seconds`` is the training loop's wall time (Lightning's
:class:`~lightning.pytorch.callbacks.Timer`) plus the data module's word-feature encoding
(``feature_seconds``); crfsuite's is its feature extraction and L-BFGS. The report carries the
machine load.

Run: ``python benchmarks/chunking.py --out results/chunking.json`` (also writes ``.md``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shlex
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from lightning.pytorch.callbacks import Timer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_report  # noqa: E402
from _recipe_runs import callback_of, fit_arguments  # noqa: E402
from peers.crfsuite_peer import train_crfsuite  # noqa: E402

from structebm.cli import build_cli  # noqa: E402
from structebm.data.chunking import ChunkingDataModule  # noqa: E402
from structebm.evaluation.tagging import tag_scheme, tagging_scores  # noqa: E402
from structebm.training.tagging_report import TaggingReport  # noqa: E402

RECIPES = Path(__file__).resolve().parent.parent / "recipes" / "chunking"
METHOD_CONFIGS = {
    "exact_nll": ("exact_nll.yaml",),
    "pcd": ("pcd.yaml",),
    "nce": ("nce.yaml",),
    "binary_nce": ("binary_nce.yaml",),
    "minilm": ("exact_nll.yaml", "minilm.yaml"),
}
"""The configs of each neural method, after ``base.yaml`` and the task configs."""
METHODS = (*METHOD_CONFIGS, "crfsuite")
THIRTY_MINUTE_STEPS = {"exact_nll": 7112, "minilm": 5460, "pcd": 4987, "binary_nce": 1120, "nce": 6290}
"""Training steps of 30 minutes on CoNLL-2000 (``docs/results/chunking.md``): the epochs done in 1,790 s
of the run of 2026-11-30 times 280 steps (exact NLL 25.4; MiniLM 19.5, its encoding included; binary
NCE 4.0); the others, not in that run as they are now, are exact NLL's steps divided by the measured
ratio of their step times to exact NLL's, two at a time: NCE 1.13 (2026-12-07), PCD 1.426
(2026-12-07: ten blocked sweeps of four chains per sentence, one emission pass a step; 300 steps
each, 72.0 s and 102.7 s)."""
SCORES = ("f1", "precision", "recall", "token_accuracy", "macro_f1")


def key_value(text: str) -> tuple[str, int]:
    """``NAME=N`` of ``--extra-columns`` as ``(NAME, N)``."""
    name, _, column = text.partition("=")
    if not name or not column.lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"--extra-columns takes NAME=COLUMN with an integer column, got {text!r}")
    return name, int(column)


def data_keys(args: argparse.Namespace) -> list[str]:
    """The ``data.init_args`` keys that ``args`` set (files, columns, sentence caps)."""
    keys = []
    if args.train is not None:
        keys += [f"data.init_args.train_path={args.train}", f"data.init_args.test_path={args.test}"]
    for flag, key in (("word_column", "word_column"), ("tag_column", "tag_column"),
                      ("max_train_sentences", "max_train_sentences"), ("max_test_sentences", "max_test_sentences")):
        if getattr(args, flag) is not None:
            keys.append(f"data.init_args.{key}={getattr(args, flag)}")
    if args.extra_columns is not None:
        keys.append(f"data.init_args.extra_columns={json.dumps(dict(args.extra_columns))}")
    return keys


def budget_keys(args: argparse.Namespace, method: str) -> list[str]:
    """``trainer.max_steps`` / ``max_epochs`` of ``method``: the flags, else ``budget_minutes`` of its steps."""
    if args.max_steps is None and args.epochs is None:
        return [f"trainer.max_steps={round(THIRTY_MINUTE_STEPS[method] * args.budget_minutes / 30)}"]
    keys = [] if args.epochs is None else [f"trainer.max_epochs={args.epochs}"]
    return [*keys, f"trainer.max_steps={-1 if args.max_steps is None else args.max_steps}"]


def method_configs(args: argparse.Namespace, method: str) -> list[Path]:
    """``base.yaml``, the task configs, the method's configs (crfsuite: exact NLL's, whose data section is
    the recipe's; the peer reads only the data)."""
    names = METHOD_CONFIGS["exact_nll" if method == "crfsuite" else method]
    return [RECIPES / "base.yaml", *args.config, *(RECIPES / name for name in names)]


def method_keys(args: argparse.Namespace, method: str, workdir: Path) -> list[str]:
    """Every config key that ``args`` set for ``method``, the overrides last."""
    folder = workdir / method
    keys = [
        f"seed_everything={args.seed}",
        f"trainer.default_root_dir={folder}",
        f"trainer.logger.init_args.save_dir={folder}",
        f"trainer.enable_progress_bar={str(args.progress).lower()}",
    ]
    budget = budget_keys(args, method) if method in METHOD_CONFIGS else []
    return [*keys, *budget, *data_keys(args), *args.override]


def train_neural(args: argparse.Namespace, method: str, workdir: Path) -> dict[str, Any]:
    """``structebm fit`` of ``method``; its row: steps, epochs, seconds and the TaggingReport's scores."""
    arguments, _ = fit_arguments(method_configs(args, method), method_keys(args, method, workdir))
    cli = build_cli(["fit", *arguments])
    report = callback_of(cli, TaggingReport).report
    data, trainer = cli.datamodule, cli.trainer
    feature_seconds = getattr(data, "feature_seconds", 0.0)
    return {
        "method": method,
        **{key: report[key] for key in SCORES if key in report},
        "scheme": report["scheme"],
        "steps": trainer.global_step,
        "epochs_done": trainer.global_step / trainer.num_training_batches,
        "train_seconds": callback_of(cli, Timer).time_elapsed("train") + feature_seconds,
        "feature_seconds": feature_seconds,
        "command": shlex.join(["structebm", "fit", *arguments]),
    }


def train_peer(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """crfsuite on the sentences of the data module that the recipe builds from the same keys."""
    arguments, _ = fit_arguments(method_configs(args, "crfsuite"), method_keys(args, "crfsuite", workdir))
    data = build_cli(arguments, run=False).datamodule
    if not isinstance(data, ChunkingDataModule):
        raise TypeError(f"chunking: the configs must give a ChunkingDataModule, got {type(data).__name__}")
    data.setup()
    result = train_crfsuite(data.sentences["train"], data.sentences["test"], tuple(data.extra_columns),
                            max_iterations=args.crfsuite_iterations)
    scores = tagging_scores(result["gold"], result["predicted"], tag_scheme(data.tag_names))
    return {
        "method": "crfsuite",
        **{key: scores[key] for key in SCORES if key in scores},
        "scheme": scores["scheme"],
        "iterations": args.crfsuite_iterations,
        "train_seconds": result["train_seconds"],
        "extra_columns": list(data.extra_columns),
    }


def run_method(method: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train and score one method; print and return its row."""
    torch.set_num_threads(args.threads)
    row = train_peer(args, workdir) if method == "crfsuite" else train_neural(args, method, workdir)
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``f1_<method>`` (chunk tags) or ``token_accuracy_<method>`` (plain tags) and ``seconds_<method>``."""
    summary: dict[str, Any] = {}
    for row in rows:
        score = "token_accuracy" if row["scheme"] == "plain" else "f1"
        summary[f"{score}_{row['method']}"] = row[score]
        summary[f"seconds_{row['method']}"] = row["train_seconds"]
    return summary


def run_benchmark(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every method of ``args.methods`` (``workers`` at a time, each in its own process when more
    than one); the summary and the rows in method order."""
    if args.workers == 1:
        rows = [run_method(method, args, workdir) for method in args.methods]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=context) as pool:
            count = len(args.methods)
            rows = list(pool.map(run_method, args.methods, [args] * count, [workdir] * count))
    return summarise(rows), rows


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write (a .md table is written next to it)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--config", action="append", type=Path, default=[],
                        help="a task config after base.yaml and before the method's (repeatable), e.g. "
                             "recipes/chunking/pos_conll2000.yaml")
    parser.add_argument("--train", help="training file (CoNLL or CoNLL-U): data.init_args.train_path (with --test)")
    parser.add_argument("--test", help="test file: data.init_args.test_path (with --train)")
    parser.add_argument("--word-column", type=int, help="data.init_args.word_column")
    parser.add_argument("--tag-column", type=int, help="data.init_args.tag_column")
    parser.add_argument("--extra-columns", nargs="*", type=key_value, metavar="NAME=N",
                        help="data.init_args.extra_columns, the extra inputs of both models; none: words alone")
    parser.add_argument("--max-train-sentences", type=int, help="data.init_args.max_train_sentences")
    parser.add_argument("--max-test-sentences", type=int, help="data.init_args.max_test_sentences")
    parser.add_argument("--budget-minutes", type=float, default=30.0,
                        help="without --max-steps / --epochs: each method's steps of this many minutes (THIRTY_MINUTE_STEPS)")
    parser.add_argument("--max-steps", type=int, help="trainer.max_steps of every neural method")
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs of every neural method")
    parser.add_argument("--seed", type=int, default=0, help="seed_everything")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="any further config key, as for structebm fit (repeatable), applied to every method")
    parser.add_argument("--crfsuite-iterations", type=int, default=200, help="L-BFGS iterations of crfsuite")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each method")
    parser.add_argument("--workers", type=int, default=1, help="methods trained at a time, each in its own process")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".json":
        parser.error(f"--out must end in .json, got {args.out}")
    if (args.train is None) != (args.test is None):
        parser.error("give --train and --test together")
    for flag in ("max_steps", "epochs", "max_train_sentences", "max_test_sentences", "crfsuite_iterations", "threads", "workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be a positive integer, got {value}")
    if args.budget_minutes <= 0:
        parser.error(f"--budget-minutes must be positive, got {args.budget_minutes}")
    for item in args.override:
        if "=" not in item or not item.partition("=")[0]:
            parser.error(f"--override takes KEY=VALUE, got {item!r}")
    for path in [*args.config, *(Path(p) for p in (args.train, args.test) if p is not None)]:
        if not path.is_file():
            parser.error(f"no such file: {path}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chunking_") as folder:
        summary, rows = run_benchmark(args, Path(folder))
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    settings["config"] = [str(path) for path in args.config]
    json_path, _ = write_report(args.out, rows, "CoNLL tagging: test scores", settings,
                                columns=["method", "f1", "token_accuracy", "steps", "epochs_done", "train_seconds"])
    payload = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**summary, **payload}, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
