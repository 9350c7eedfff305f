"""The ``structebm`` command: Lightning's own CLI over :class:`EBMModule` and YAML configs.

Examples::

    structebm fit --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml
    structebm fit --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml --trainer.max_epochs 2
    structebm fit --print_config --config recipes/toy2d/base.yaml --config recipes/toy2d/pcd.yaml

The model section configures the energy and the objective by class path; the data
section takes any LightningDataModule by class path.
"""

from __future__ import annotations

from typing import Optional

from lightning.pytorch.cli import LightningCLI

from structebm.training.module import EBMModule

__all__ = ["build_cli", "main"]


def build_cli(args: Optional[list[str]] = None, run: bool = True) -> LightningCLI:
    """Parse ``args`` (default ``sys.argv[1:]``), build model, data and trainer, and run the subcommand."""
    return LightningCLI(
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
