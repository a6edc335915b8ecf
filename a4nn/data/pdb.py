"""Read atom coordinates and elements from a PDB file (ATOM/HETATM records).

Only what the diffraction simulator needs: Cartesian coordinates in Ångström and the
chemical element of each atom. The element comes from columns 77-78 when present;
otherwise it is inferred from the atom name, which must work for CHARMM-written files
(like the packaged adenylate kinase pair) where the name alignment rule of the PDB format
is not followed: a CHARMM hydrogen ``HG1`` is hydrogen, not mercury.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Residue names of single-atom ions (CHARMM names and PDB chemical component ids).
ION_RESIDUES: dict[str, str] = {
    "SOD": "Na", "NA": "Na", "POT": "K", "K": "K", "CLA": "Cl", "CL": "Cl",
    "CAL": "Ca", "CA": "Ca", "MG": "Mg", "ZN": "Zn", "ZN2": "Zn", "CES": "Cs",
    "LIT": "Li", "RUB": "Rb", "BAR": "Ba", "CAD": "Cd", "CD": "Cd", "MN": "Mn",
    "FE": "Fe", "FE2": "Fe", "CU": "Cu", "CU1": "Cu", "CO": "Co", "NI": "Ni",
    "BR": "Br", "IOD": "I", "HG": "Hg",
}  # fmt: skip

# Two-letter elements that occur as hetero atoms in biomolecular PDB files.
HETERO_TWO_LETTER = {
    "Fe", "Zn", "Mg", "Mn", "Cl", "Br", "Na", "Cu", "Co", "Ni", "Se", "Cd", "Hg", "Ca",
}  # fmt: skip

ORGANIC = {"H", "C", "N", "O", "S", "P"}


class PDBError(ValueError):
    """A PDB file that cannot be used; the message names the file (and line)."""


@dataclass(frozen=True)
class Structure:
    """Atoms of one molecule: ``coords`` (N, 3) in Å and ``elements`` (N,) symbols."""

    path: Path
    coords: np.ndarray
    elements: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.coords.shape[0])


def _normalise_symbol(sym: str) -> str:
    sym = "".join(ch for ch in sym if ch.isalpha())
    return sym[:1].upper() + sym[1:].lower()


def infer_element(name: str, resname: str, record: str) -> str:
    """Element of an atom whose element column is blank, from its name and residue.

    Rules, in order: a single-atom ion residue (``SOD``, ``CLA``, ``ZN``...) gives its
    ion; in HETATM records a name starting with a known two-letter hetero element
    (``FE``, ``ZN``, ``CL``...) that equals the residue name or is left-aligned in
    columns 13-14 gives that element; otherwise the first letter of the name (ATOM
    records of proteins and nucleic acids only hold H, C, N, O, S and P, so CHARMM's
    ``HG1``/``CA``/``SD`` are H/C/S).
    """
    stripped = name.strip().upper()
    res = resname.strip().upper()
    letters = "".join(ch for ch in stripped if ch.isalpha())
    if not letters:
        return ""
    ion = ION_RESIDUES.get(res)
    if ion and letters in ("".join(ch for ch in res if ch.isalpha()), ion.upper()):
        return ion
    if record == "HETATM":
        two = letters[:2].capitalize()
        left_aligned = len(name) >= 2 and name[0] not in " 0123456789"
        if two in HETERO_TWO_LETTER and (letters == res or (left_aligned and len(letters) <= 2)):
            return two
    return letters[0]


def read_pdb(path: str | Path) -> Structure:
    """Read the ATOM and HETATM records of ``path`` (fixed PDB columns).

    Only the first model is read (up to ``END``/``ENDMDL``) and, of atoms with alternate
    locations, only the first (altLoc blank, ``A`` or ``1``). Waters and ligands in
    HETATM records are kept: remove them from the file if they should not scatter.

    Raises ``PDBError`` naming the file when it is missing, holds no atoms, or a record
    cannot be parsed (with its line number).
    """
    path = Path(path)
    if not path.is_file():
        raise PDBError(f"PDB file {path} does not exist (give the path of a .pdb file)")
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        raise PDBError(f"PDB file {path} cannot be read: {exc}") from exc

    coords: list[tuple[float, float, float]] = []
    elements: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        record = line[:6].strip()
        if record not in ("ATOM", "HETATM"):
            if record in ("END", "ENDMDL") and coords:
                break  # first model only
            continue
        if len(line) > 16 and line[16] not in " A1":
            continue  # alternate locations: keep the first (blank, A or 1)
        try:
            xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
        except ValueError:
            raise PDBError(
                f"PDB file {path}, line {lineno}: cannot read x/y/z from columns 31-54 "
                f"of {line.rstrip()!r}"
            ) from None
        if not all(np.isfinite(xyz)):
            raise PDBError(f"PDB file {path}, line {lineno}: non-finite coordinate {xyz}")
        name = line[12:16]
        column = _normalise_symbol(line[76:78]) if len(line) > 76 else ""
        element = column or infer_element(name, line[17:21], record)
        if not element:
            raise PDBError(
                f"PDB file {path}, line {lineno}: no element in columns 77-78 and none "
                f"can be inferred from atom name {name!r}"
            )
        coords.append(xyz)
        elements.append(element)

    if not coords:
        raise PDBError(f"PDB file {path} has no ATOM or HETATM records")
    return Structure(
        path=path,
        coords=np.asarray(coords, dtype=np.float64),
        elements=np.asarray(elements, dtype="<U2"),
    )
