"""A user's own SMILES files: reading them with line numbers, and splitting them into train and test.

Formats, chosen by the file name (a trailing ``.gz`` is read gzipped):

* ``.csv``: a header line naming the columns; the SMILES are in the column ``smiles_column``
  (and an optional ``name_column``, and numeric ``property_columns`` such as measured
  activities, read as floats). Line ``k`` of the file is row ``k - 2``.
* ``.smi`` / ``.txt``: one molecule per line, the SMILES first and, after white space, an
  optional name. Blank lines and lines starting with ``#`` are skipped; a first line whose
  first field is ``smiles_column`` (case ignored) is a header and skipped too.

Every row keeps its 1-based line number in the file, so a row that cannot be used is
reported where the user can find it. A split is one of: a separate test file (every row of
the main file trains), a list of 0-based test rows, or a seeded fraction

.. math::
    |\\text{test}| = \\mathrm{round}(f \\cdot M), \\qquad
    \\text{test} = \\pi_{\\text{seed}}(0..M-1)[:|\\text{test}|],

the first rows of a permutation of the ``M`` rows drawn from ``seed`` alone.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ["SmilesRow", "SmilesFileError", "read_smiles_file", "split_rows"]

_CSV_SUFFIXES = (".csv",)
_LINE_SUFFIXES = (".smi", ".txt")


@dataclass(frozen=True)
class SmilesRow:
    """One molecule of a file: its SMILES, its 1-based ``line`` in the file, an optional ``name``
    and the values of the requested property columns, in their order."""

    smiles: str
    line: int
    name: Optional[str] = None
    values: Tuple[float, ...] = ()


class SmilesFileError(ValueError):
    """A SMILES file cannot be read as asked (format, column, split); the message names the file."""


def _format_of(path: Path) -> Tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _CSV_SUFFIXES:
        return "csv", gzipped
    if last in _LINE_SUFFIXES:
        return "lines", gzipped
    raise SmilesFileError(
        f"{path}: unknown SMILES file type {''.join(path.suffixes)!r}; use .csv, .smi or .txt (optionally .gz)"
    )


def _open_text(path: Path, gzipped: bool) -> io.TextIOBase:
    if not path.is_file():
        raise SmilesFileError(f"{path}: no such SMILES file")
    return gzip.open(path, "rt", newline="") if gzipped else open(path, "rt", newline="")


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SmilesFileError(f"{path}, line {line}: property column {column!r} holds {text!r}, not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise SmilesFileError(f"{path}, line {line}: property column {column!r} holds {text!r}, not a finite number")
    return value


def _read_csv(
    handle: io.TextIOBase, path: Path, smiles_column: str, name_column: Optional[str], property_columns: Sequence[str]
) -> List[SmilesRow]:
    reader = csv.reader(handle)
    try:
        header = [column.strip() for column in next(reader)]
    except StopIteration:
        raise SmilesFileError(f"{path}: the file is empty (a .csv needs a header line)") from None
    columns = {column: i for i, column in enumerate(header)}
    roles = [("smiles_column", smiles_column), ("name_column", name_column)]
    for role, column in roles + [("property column", column) for column in property_columns]:
        if column is not None and column not in columns:
            raise SmilesFileError(f"{path}: {role} {column!r} is not a column of the header line; columns: {header}")
    smiles_at = columns[smiles_column]
    name_at = None if name_column is None else columns[name_column]
    value_at = [(columns[column], column) for column in property_columns]
    rows: List[SmilesRow] = []
    line = 1
    for fields in reader:
        line = reader.line_num
        if not fields or all(not field.strip() for field in fields):
            continue
        if len(fields) != len(header):
            raise SmilesFileError(f"{path}, line {line}: {len(fields)} fields, the header line has {len(header)}")
        name = None if name_at is None else fields[name_at].strip()
        values = tuple(_number(fields[at].strip(), path, line, column) for at, column in value_at)
        rows.append(SmilesRow(fields[smiles_at].strip(), line, name, values))
    return rows


def _read_lines(handle: io.TextIOBase, smiles_column: str) -> List[SmilesRow]:
    rows: List[SmilesRow] = []
    for line, text in enumerate(handle, start=1):
        fields = text.strip().split(maxsplit=1)
        if not fields or fields[0].startswith("#"):
            continue
        if not rows and fields[0].lower() == smiles_column.lower():
            continue  # a header line
        rows.append(SmilesRow(fields[0], line, fields[1].strip() if len(fields) > 1 else None))
    return rows


def read_smiles_file(
    path: str | Path, smiles_column: str = "smiles", name_column: Optional[str] = None,
    property_columns: Optional[Sequence[str]] = None,
) -> List[SmilesRow]:
    """The molecules of a ``.csv`` / ``.smi`` / ``.txt`` file (gzip accepted) in file order, with line numbers.

    Args:
        path: the file.
        smiles_column: the ``.csv`` column holding the SMILES; for ``.smi`` / ``.txt`` a first
            line starting with this word is taken as a header.
        name_column: an optional ``.csv`` column of molecule names (``.smi`` / ``.txt``: the
            text after the SMILES).
        property_columns: ``.csv`` columns of numbers (a user's own properties); every row must
            hold a finite number in each, else the error names the line and the column.

    Returns:
        one :class:`SmilesRow` per molecule; an empty SMILES field is kept (and reported when encoded).
    """
    path = Path(path)
    kind, gzipped = _format_of(path)
    if isinstance(property_columns, str):
        raise SmilesFileError(f"{path}: property_columns must be a list of column names, got the string {property_columns!r}")
    property_columns = [] if property_columns is None else list(property_columns)
    if len(set(property_columns)) != len(property_columns):
        raise SmilesFileError(f"{path}: property_columns names a column more than once: {property_columns}")
    if property_columns and kind != "csv":
        raise SmilesFileError(f"{path}: property_columns {property_columns} need a .csv file with a header line")
    with _open_text(path, gzipped) as handle:
        if kind == "csv":
            rows = _read_csv(handle, path, smiles_column, name_column, property_columns)
        else:
            rows = _read_lines(handle, smiles_column)
    if not rows:
        raise SmilesFileError(f"{path}: the file holds no SMILES rows")
    return rows


def split_rows(
    num_rows: int,
    test_rows: Optional[Sequence[int]] = None,
    test_fraction: Optional[float] = None,
    seed: int = 0,
    source: str = "SMILES file",
) -> Tuple[List[int], List[int]]:
    """``(train, test)`` 0-based rows, each sorted: the given ``test_rows`` or a seeded ``test_fraction``.

    Exactly one of ``test_rows`` and ``test_fraction`` must be given; ``source`` names the file in errors.
    """
    if (test_rows is None) == (test_fraction is None):
        raise SmilesFileError(f"{source}: give exactly one of test_rows and test_fraction")
    if test_rows is not None:
        chosen = sorted(set(int(row) for row in test_rows))
        bad = [row for row in chosen if not 0 <= row < num_rows]
        if bad:
            raise SmilesFileError(f"{source}: test rows {bad[:10]} are outside 0..{num_rows - 1} (0-based data rows)")
    else:
        if not 0.0 < float(test_fraction) < 1.0:
            raise SmilesFileError(f"{source}: test_fraction must lie strictly between 0 and 1, got {test_fraction}")
        count = int(round(float(test_fraction) * num_rows))
        generator = torch.Generator().manual_seed(int(seed))
        chosen = sorted(torch.randperm(num_rows, generator=generator)[:count].tolist())
    test_set = set(chosen)
    train = [row for row in range(num_rows) if row not in test_set]
    if not chosen or not train:
        raise SmilesFileError(
            f"{source}: the split leaves {len(train)} training and {len(chosen)} test rows of {num_rows}; both must be > 0"
        )
    return train, chosen
