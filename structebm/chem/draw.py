"""A grid image of molecules with legends, written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from rdkit import Chem
from rdkit.Chem import Draw

__all__ = ["molecule_grid_png"]


def molecule_grid_png(
    molecules: Sequence[Optional[Union[str, Chem.Mol]]],
    path: Optional[Union[str, Path]] = None,
    legends: Optional[Sequence[str]] = None,
    molecules_per_row: int = 5,
    sub_image_size: tuple[int, int] = (200, 200),
) -> bytes:
    """Draw molecules on a grid and return the PNG bytes (also written to ``path`` if given).

    Args:
        molecules: SMILES or RDKit molecules; ``None`` or an unparsable SMILES draws an empty
            cell whose legend says "invalid".
        path: optional output file.
        legends: one caption per molecule (default: the canonical SMILES).
        molecules_per_row: grid width.
        sub_image_size: pixel size of one cell.
    """
    if len(molecules) == 0:
        raise ValueError("molecule_grid_png: got no molecules")
    if legends is not None and len(legends) != len(molecules):
        raise ValueError(f"molecule_grid_png: {len(legends)} legends for {len(molecules)} molecules")
    mols, captions = [], []
    for position, item in enumerate(molecules):
        mol = Chem.MolFromSmiles(item) if isinstance(item, str) else item
        mols.append(mol if mol is not None else Chem.Mol())
        default = "invalid" if mol is None else Chem.MolToSmiles(mol)
        captions.append(default if legends is None else str(legends[position]))
    image = Draw.MolsToGridImage(
        mols, molsPerRow=molecules_per_row, subImgSize=sub_image_size, legends=captions, returnPNG=True
    )
    png = image if isinstance(image, bytes) else _to_png(image)
    if path is not None:
        Path(path).write_bytes(png)
    return png


def _to_png(image) -> bytes:
    """PNG bytes of what RDKit drew: a PIL image, or (inside IPython) a display image holding them."""
    from io import BytesIO

    if isinstance(getattr(image, "data", None), bytes):
        return image.data
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
