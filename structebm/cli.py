"""The ``structebm`` command: Lightning's own CLI over :class:`EBMModule` and YAML configs.

Examples::

    structebm fit --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml
    structebm fit --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml --trainer.max_epochs 2
    structebm fit --print_config --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml

The model section configures the energy and the objective by class path; the data
section takes any LightningDataModule by class path. A data module whose files decide some
model settings (the tag count of a tagging data set) names them in a class method
``model_settings(**init_args) -> {key under model: value}``; before anything is built, the
command sets each of those keys that the model's config has (:func:`apply_data_settings`); a
key may also name an entry already present in a dict-valued setting (``sampler_options.dataset``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional

from lightning.pytorch.cli import LightningCLI

from structebm.training.module import EBMModule

__all__ = ["StructebmCLI", "apply_data_settings", "build_cli", "main"]


def apply_data_settings(config: Any) -> dict[str, tuple[Any, Any]]:
    """Set in ``config`` (a parsed jsonargparse namespace with ``data`` and ``model``) the model
    settings the data module's class decides; return ``{key: (old, new)}`` for the changed ones."""
    data = config.get("data") if hasattr(config, "get") else None
    class_path = getattr(data, "class_path", None)
    if not class_path:
        return {}
    module_name, _, name = class_path.rpartition(".")
    settings = getattr(getattr(importlib.import_module(module_name), name), "model_settings", None)
    if not callable(settings):
        return {}
    init_args = data.init_args.as_dict() if getattr(data, "init_args", None) is not None else {}
    changed = {}
    for key, value in settings(**init_args).items():
        path = f"model.{key}"
        parent, _, member = path.rpartition(".")
        if path in config:
            old = config[path]
            config[path] = value
        elif parent in config and isinstance(config[parent], dict) and member in config[parent]:
            old = config[parent][member]  # a key of a dict-valued setting, e.g. sampler_options
            config[parent] = {**config[parent], member: value}
        else:
            continue
        if old != value:
            changed[path] = (old, value)
    return changed


class StructebmCLI(LightningCLI):
    """Lightning's CLI; before the classes are built, the data module fills in the model settings it decides."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        for path, (old, new) in apply_data_settings(config).items():
            print(f"structebm: {path} = {new} (from the data; the config had {old})", file=sys.stderr)


def build_cli(args: Optional[list[str]] = None, run: bool = True) -> LightningCLI:
    """Parse ``args`` (default ``sys.argv[1:]``), build model, data and trainer, and run the subcommand."""
    return StructebmCLI(
        EBMModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        args=args,
        run=run,
    )


def main() -> None:
    """Console entry point of the ``structebm`` command."""
    build_cli()


if __name__ == "__main__":
    main()
