"""Under DDP only the global-zero process evaluates and writes an end-of-fit report.

A process of another rank must return before touching the trainer's data module or the energy:
the stub trainer below has neither, so any report that went on would raise.
"""

from types import SimpleNamespace

import pytest

from structebm.training.graph_report import GraphGenerationReport
from structebm.training.image_label_report import ImageLabelReport
from structebm.training.molecule_report import MoleculeGenerationReport
from structebm.training.tagging_report import TaggingReport
from structebm.training.toy2d_report import Toy2DReport


class SilentTask:
    """A generation task that fails the test if it is ever run."""

    def evaluate(self, *args, **kwargs):
        raise AssertionError("a report ran its task on a process that is not global zero")

    def logged(self, report):
        return {}

    def summary(self, report):
        return ""


REPORTS = {
    "graph": lambda: GraphGenerationReport(),
    "image_label": lambda: ImageLabelReport(),
    "molecule": lambda: MoleculeGenerationReport(SilentTask()),
    "tagging": lambda: TaggingReport(),
    "toy2d": lambda: Toy2DReport(),
}


@pytest.mark.parametrize("name", list(REPORTS))
def test_reports_do_nothing_off_global_zero(name):
    report = REPORTS[name]()
    other_rank = SimpleNamespace(is_global_zero=False, datamodule=None, log_dir=None, progress_bar_callback=None)
    report.on_fit_end(other_rank, SimpleNamespace())
    assert report.report is None
    global_zero = SimpleNamespace(is_global_zero=True, datamodule=None, log_dir=None, progress_bar_callback=None)
    with pytest.raises((AttributeError, ValueError, TypeError, AssertionError)):
        report.on_fit_end(global_zero, SimpleNamespace())  # the control: rank zero does go on, and fails on the stub
