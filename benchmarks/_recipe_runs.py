"""Benchmarks that run a recipe: the ``structebm fit`` arguments of configs plus config keys, and the
callbacks of the trained command.

A benchmark names the recipe's YAML files and the keys its flags set; :func:`fit_arguments`
turns them into the arguments of ``structebm fit`` (:func:`structebm.cli.build_cli`), so a
benchmark trains exactly what a user's command trains. Lightning's command line cannot set one
entry of a list (the terms of a combined objective), so a key with an entry number among its
parts is set in a copy of the list and the list is passed whole.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = ["TIMER", "merged_config", "fit_arguments", "callback_of"]

TIMER = 'trainer.callbacks+={"class_path": "lightning.pytorch.callbacks.Timer", "init_args": {"interval": "step"}}'
"""Appended to the recipe's callbacks: times the training loop of both models alike."""


def merged_config(configs: Sequence[Path]) -> dict[str, Any]:
    """The YAML files merged in order as ``--config`` layers them: mappings merge key by key, a later
    value (a list included) replaces an earlier one."""

    def merge(into: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
        for key, value in layer.items():
            into[key] = merge(into[key], value) if isinstance(value, dict) and isinstance(into.get(key), dict) else value
        return into

    config: dict[str, Any] = {}
    for path in configs:
        config = merge(config, yaml.safe_load(path.read_text()) or {})
    return config


def _entry(node: Any, part: str, item: str) -> Any:
    """``node[part]`` of a list (``None`` past its end) or of a mapping (an empty one added if absent)."""
    if isinstance(node, list):
        if not part.isdigit():
            raise ValueError(f"fit_arguments: {item}: {part!r} is not an entry number of a list")
        return node[int(part)] if int(part) < len(node) else None
    if isinstance(node, dict):
        return node.setdefault(part, {})
    raise ValueError(f"fit_arguments: {item}: {part!r} lies below a value that is neither a list nor a mapping")


def fit_arguments(configs: Sequence[Path], keys: Sequence[str]) -> tuple[list[str], set[str]]:
    """The ``structebm fit`` arguments: the configs, every ``KEY=VALUE`` of ``keys`` in order, then :data:`TIMER`.

    A key with an entry number among its parts (``model.objective.init_args.terms.1.init_args.weight``)
    is set in a copy of the list the configs give (``...terms``), and that list is passed whole,
    after the other keys. Returns the arguments and the keys skipped because their list has no
    such entry.
    """
    config, lists, changed, skipped = merged_config(configs), {}, set(), set()
    arguments = [part for path in configs for part in ("--config", str(path))]
    for item in keys:
        key, _, value = item.partition("=")
        parts = key.split(".")
        first = next((i for i, part in enumerate(parts) if part.isdigit()), None)
        if first is None:
            arguments.append(f"--{item}")
            continue
        prefix = ".".join(parts[:first])
        if prefix not in lists:
            found: Any = config
            for part in parts[:first]:
                found = found.get(part) if isinstance(found, dict) else None
            if not isinstance(found, list):
                raise ValueError(f"fit_arguments: {item}: {prefix} is not a list in {', '.join(map(str, configs))}")
            lists[prefix] = copy.deepcopy(found)
        node: Any = lists[prefix]
        for part in parts[first:-1]:
            node = _entry(node, part, item)
            if node is None:
                break
        if node is None or (isinstance(node, list) and _entry(node, parts[-1], item) is None):
            skipped.add(item)
            continue
        if not isinstance(node, (list, dict)):
            raise ValueError(f"fit_arguments: {item}: {'.'.join(parts[:-1])} is neither a list nor a mapping")
        node[int(parts[-1]) if isinstance(node, list) else parts[-1]] = yaml.safe_load(value)
        changed.add(prefix)
    arguments += [f"--{prefix}={json.dumps(lists[prefix])}" for prefix in lists if prefix in changed]
    return [*arguments, f"--{TIMER}"], skipped


def callback_of(cli: Any, kind: type, required: bool = True) -> Any:
    """The one callback of type ``kind`` in the trained ``cli``'s trainer (``None`` if absent and not ``required``)."""
    found = [callback for callback in cli.trainer.callbacks if isinstance(callback, kind)]
    if len(found) > 1 or (required and not found):
        raise RuntimeError(f"callback_of: the trainer needs one {kind.__name__} callback, found {len(found)}")
    return found[0] if found else None
