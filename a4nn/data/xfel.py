"""Far-field single-particle X-ray diffraction of a protein, as an XFEL records it.

Physics (see docs/xfel.md):

* The scattering amplitude of the molecule at scattering vector ``s`` (|s| = 2 sin(θ)/λ,
  in 1/Å) is ``F(s) = Σ_j f_j(|s|) exp(2πi s·r_j)``, with ``f_j`` the Waasmaier–Kirfel
  (Cromer–Mann type) atomic form factor of atom ``j`` in electrons (hydrogens included).
  ``|F(s)|²`` is computed exactly on a 3D reciprocal grid ONCE per conformation (a
  separable direct sum evaluated with complex matrix products, no gridding of the density)
  and sliced per image.
* Each image: a uniformly random orientation ``R`` in SO(3) (``Rotation.random``); the
  rotated molecule's intensity at the detector's Ewald-sphere vectors ``s`` is
  ``I(Rᵀ s)``, read from the grid by trilinear interpolation.
* Expected photons in pixel ``p``: ``Φ · r_e² · ΔΩ_p · P_p · |F(s_p)|²`` with ``Φ`` the
  fluence (photons/µm²/pulse converted to m⁻²), ``r_e`` the classical electron radius,
  ``ΔΩ_p`` the pixel's solid angle and ``P_p`` the polarization factor of a beam
  linearly polarized along the detector's x axis. Counts are Poisson draws.

Defaults (:class:`Detector`): 6 keV photons (λ = 2.066 Å), a 127×127 detector of
600 µm pixels (8×8-binned 75 µm pixels) at 0.2 m, centred on the beam. The middle of the
detector's edge sees |s| = 0.090 1/Å (11 Å resolution), its corners 0.127 1/Å (7.9 Å).
The adenylate kinase pair (12,616 electrons) then scatters about 440, 4,400 and 44,000
photons per image at 1e14, 1e15 and 1e16 photons/µm²/pulse; at 1e14 over 97% of the
pixels are 0. A small CNN tells the conformations apart with about 91%, 97% and 99%
accuracy (benchmarks/xfel/RESULTS.md), the order of the A4NN paper's low/medium/high.

Output layout (A4NN's): ``OUT/images/{trainset,testset}/xfel_<I>_<conf>_ptm<id>.tiff``
(float32 photon counts), ``OUT/angles_list.txt`` (one line per image: split/file name, the
molecule's rotation as a scalar-last quaternion ``qx qy qz qw`` and as intrinsic ZYZ
Euler angles in degrees) and ``OUT/dataset.json`` (parameters and label map).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import tifffile
from periodictable.cromermann import fxrayatstol
from scipy import constants
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from a4nn.data.pdb import Structure, read_pdb

NAMED_INTENSITIES: dict[str, float] = {"low": 1e14, "medium": 1e15, "high": 1e16}
"""The beam fluences of the A4NN experiments, in photons/µm²/pulse."""

R_E = constants.physical_constants["classical electron radius"][0]  # m
GENERATOR = "a4nn.data.xfel"
FORMAT_VERSION = 1


class XFELError(ValueError):
    """Bad simulator input; the message names the value or file at fault."""


@dataclass(frozen=True)
class Detector:
    """A flat square pixel detector normal to the beam, centred on it.

    The beam travels along +z and is linearly polarized along the detector's x axis.
    Pixel ``(row, col)`` sits at ``x = (col - c)·pixel``, ``y = (row - c)·pixel`` with
    ``c = (pixels - 1)/2``: the centre pixel of the default 127×127 detector is on the
    beam axis (no beam stop).
    """

    photon_energy_ev: float = 6000.0
    distance_m: float = 0.2
    pixel_size_m: float = 600e-6
    pixels: int = 127

    def __post_init__(self) -> None:
        for name in ("photon_energy_ev", "distance_m", "pixel_size_m"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise XFELError(f"Detector.{name} must be a positive number, got {value!r}")
        if not (isinstance(self.pixels, int) and self.pixels >= 2):
            raise XFELError(f"Detector.pixels must be an integer >= 2, got {self.pixels!r}")

    @property
    def wavelength_a(self) -> float:
        """Photon wavelength in Å."""
        return constants.h * constants.c / (self.photon_energy_ev * constants.e) * 1e10

    def geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per pixel: scattering vector ``s`` (P, 3) in 1/Å on the Ewald sphere, solid
        angle ΔΩ (P,) in sr, and polarization factor (P,); P = pixels², row-major."""
        c = (self.pixels - 1) / 2
        idx = (np.arange(self.pixels) - c) * self.pixel_size_m
        y, x = np.meshgrid(idx, idx, indexing="ij")
        z = np.full_like(x, self.distance_m)
        r = np.sqrt(x**2 + y**2 + z**2)
        u = np.stack([x / r, y / r, z / r], axis=-1).reshape(-1, 3)
        s = (u - np.array([0.0, 0.0, 1.0])) / self.wavelength_a
        solid_angle = (self.pixel_size_m**2 * self.distance_m / r**3).reshape(-1)
        polarization = 1.0 - u[:, 0] ** 2
        return s, solid_angle, polarization

    def s_max(self) -> float:
        """Largest |s| on the detector (its corners), in 1/Å."""
        s, _, _ = self.geometry()
        return float(np.linalg.norm(s, axis=1).max())


@dataclass(frozen=True)
class IntensityVolume:
    """``|F(s)|²`` in electrons² on a cubic grid ``s_k = (k - (n-1)/2)·spacing``."""

    values: np.ndarray  # (n, n, n) float32
    spacing: float  # 1/Å

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def sample(self, s: np.ndarray) -> np.ndarray:
        """Trilinear interpolation at scattering vectors ``s`` (P, 3); 0 outside the grid."""
        coords = s.T / self.spacing + (self.n - 1) / 2
        return map_coordinates(self.values, coords, order=1, mode="constant", cval=0.0)


def electron_counts(elements: np.ndarray) -> np.ndarray:
    """Electrons per atom (the form factor at s = 0)."""
    return np.array([form_factor(str(e), np.zeros(1))[0] for e in elements])


def form_factor(element: str, s_abs: np.ndarray) -> np.ndarray:
    """Atomic form factor (electrons) of ``element`` at |s| = 2 sin θ / λ (1/Å)."""
    try:
        return np.asarray(fxrayatstol(element, np.asarray(s_abs) / 2.0), dtype=np.float64)
    except KeyError:
        raise XFELError(
            f"no X-ray form factor for element {element!r} (a chemical symbol such as C, "
            "Fe or Zn is expected; fix the element column of the PDB file)"
        ) from None


def centred_coords(structure: Structure) -> np.ndarray:
    """Coordinates relative to the molecule's centre of electron density (its centroid
    weighted by electron counts): every conformation is centred the same way."""
    w = electron_counts(structure.elements)
    return structure.coords - (w[:, None] * structure.coords).sum(0) / w.sum()


_VOLUME_CACHE: dict[tuple[str, float, float], IntensityVolume] = {}
_VOLUME_CACHE_SIZE = 8  # at most ~120 MB at the default grid


def cached_intensity_volume(structure: Structure, s_max: float, spacing: float) -> IntensityVolume:
    """:func:`intensity_volume`, memoized in this process by the atoms' content and the
    grid (a few recent volumes), so that datasets at several fluences, or a CLI call after
    a benchmark, pay the precompute once. The returned arrays are read-only."""
    digest = hashlib.sha256(
        structure.coords.tobytes() + structure.elements.astype("<U2").tobytes()
    ).hexdigest()
    key = (digest, float(s_max), float(spacing))
    if key not in _VOLUME_CACHE:
        volume = intensity_volume(structure, s_max, spacing)
        volume.values.flags.writeable = False
        while len(_VOLUME_CACHE) >= _VOLUME_CACHE_SIZE:
            _VOLUME_CACHE.pop(next(iter(_VOLUME_CACHE)))
        _VOLUME_CACHE[key] = volume
    return _VOLUME_CACHE[key]


def intensity_volume(
    structure: Structure, s_max: float, spacing: float, *, chunk: int = 8
) -> IntensityVolume:
    """Exact ``|F(s)|²`` of ``structure`` on a cubic grid covering |s_i| <= ``s_max``.

    ``F`` on a Cartesian grid factorizes per atom into ``e_x[j, a]·e_y[j, b]·e_z[j, c]``
    (``e_x = exp(2πi s_a x_j)``), so the sum over atoms of one element is a complex matrix
    product; form factors multiply per element. Friedel symmetry ``I(-s) = I(s)`` halves
    the work. Cost ~ atoms × n³/2 complex multiply-adds (BLAS).
    """
    half = int(math.ceil(s_max / spacing)) + 2  # margin for interpolation at the corners
    n = 2 * half + 1
    axis = (np.arange(n) - half) * spacing
    axis_z = axis[half:]  # s_z >= 0; the rest follows from Friedel symmetry
    xyz = centred_coords(structure)
    s2 = axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis_z[None, None, :] ** 2
    s_abs = np.sqrt(s2)
    amplitude = np.zeros((n, n, axis_z.size), dtype=np.complex128)
    for element in np.unique(structure.elements):
        r = xyz[structure.elements == element]
        ex = np.exp(2j * np.pi * r[:, 0:1] * axis[None, :]).astype(np.complex64)
        ey = np.exp(2j * np.pi * r[:, 1:2] * axis[None, :]).astype(np.complex64)
        ez = np.exp(2j * np.pi * r[:, 2:3] * axis_z[None, :]).astype(np.complex64)
        partial = np.empty((n, n, axis_z.size), dtype=np.complex64)
        for a0 in range(0, n, chunk):
            a1 = min(n, a0 + chunk)
            exy = ex[:, a0:a1, None] * ey[:, None, :]  # (atoms, chunk, n)
            partial[a0:a1] = (exy.reshape(r.shape[0], -1).T @ ez).reshape(a1 - a0, n, -1)
        amplitude += form_factor(str(element), s_abs) * partial
    half_values = (amplitude.real**2 + amplitude.imag**2).astype(np.float32)
    values = np.empty((n, n, n), dtype=np.float32)
    values[:, :, half:] = half_values
    values[:, :, :half] = half_values[::-1, ::-1, 1:][:, :, ::-1]
    return IntensityVolume(values=values, spacing=float(spacing))


def conformation_token(path: Path) -> str:
    """File-name token of a conformation: the PDB file stem, lower case, letters and
    digits only (``adk_open.pdb`` -> ``adkopen``), so that ``_`` only separates fields."""
    return re.sub(r"[^a-z0-9]", "", Path(path).stem.lower())


def intensity_token(intensity: float) -> str:
    """``1e15`` for 1e15 photons/µm²/pulse, ``2.5e14`` for 2.5e14 (no ``+`` or ``_``)."""
    mantissa, exponent = f"{intensity:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def validate_intensity(intensity: float | str) -> float:
    """Fluence in photons/µm²/pulse: a positive finite number or ``low|medium|high``."""
    if isinstance(intensity, str):
        key = intensity.strip().lower()
        if key in NAMED_INTENSITIES:
            return NAMED_INTENSITIES[key]
        try:
            intensity = float(key)
        except ValueError:
            raise XFELError(
                f"intensity {intensity!r} is not a number; use 1e14, 1e15 or 1e16 "
                "(photons/µm²/pulse) or low/medium/high"
            ) from None
    if isinstance(intensity, bool) or not isinstance(intensity, int | float):
        raise XFELError(f"intensity must be a number of photons/µm²/pulse, got {intensity!r}")
    value = float(intensity)
    if not math.isfinite(value) or value <= 0:
        raise XFELError(
            f"intensity must be a positive, finite fluence in photons/µm²/pulse (e.g. 1e14, "
            f"1e15, 1e16), got {intensity!r}"
        )
    return value


class XFELSimulator:
    """Diffraction patterns of several conformations on one detector.

    The 3D intensities are computed once in ``__init__`` (seconds); :meth:`expected` and
    :meth:`sample` then cost one trilinear slice (and a Poisson draw) per image.
    ``grid_oversampling`` sets the reciprocal grid spacing to ``1 / (grid_oversampling·D)``
    with D the largest molecular diameter (the intensity varies on the scale 1/D whatever
    the pixel size). The trilinear error falls as its square: about 10% at 2, 2.4% at 4
    and 0.6% at the default 8 (mean relative error against the exact sum over atoms).
    """

    def __init__(
        self,
        structures: Sequence[Structure],
        detector: Detector | None = None,
        grid_oversampling: float = 8.0,
    ) -> None:
        if grid_oversampling < 1:
            raise XFELError(f"grid_oversampling must be >= 1, got {grid_oversampling!r}")
        self.structures = list(structures)
        self.detector = detector or Detector()
        s, solid_angle, polarization = self.detector.geometry()
        self.s = s
        # photons per (photon/m²) per electron², per pixel
        self.cross_section = (R_E**2 * solid_angle * polarization).astype(np.float64)
        diameter = max(2 * np.linalg.norm(centred_coords(x), axis=1).max() for x in structures)
        self.grid_spacing = 1.0 / (grid_oversampling * max(float(diameter), 1.0))
        s_max = float(np.linalg.norm(s, axis=1).max())
        self.volumes = [cached_intensity_volume(x, s_max, self.grid_spacing) for x in structures]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.detector.pixels, self.detector.pixels)

    def expected(self, conformation: int, rotation: Rotation, intensity: float) -> np.ndarray:
        """Expected photon counts (H, W) for the molecule rotated by ``rotation``."""
        fluence_m2 = intensity * 1e12  # photons/µm² -> photons/m²
        i_s = self.volumes[conformation].sample(rotation.inv().apply(self.s))
        return (fluence_m2 * self.cross_section * i_s).reshape(self.shape)

    def sample(
        self, conformation: int, rotation: Rotation, intensity: float, rng: np.random.Generator
    ) -> np.ndarray:
        """One Poisson-noisy pattern (float32 photon counts)."""
        lam = self.expected(conformation, rotation, intensity)
        return rng.poisson(lam).astype(np.float32)


def default_pdb_files() -> tuple[Path, Path]:
    """The packaged adenylate kinase pair: (open, closed)."""
    root = resources.files("a4nn.data") / "proteins"
    return (Path(str(root / "adk_open.pdb")), Path(str(root / "adk_closed.pdb")))


def _class_counts(total: int, n_classes: int) -> list[int]:
    """Balanced class sizes; when ``total`` is not divisible the first classes get one
    more image each (so sizes differ by at most one)."""
    base, extra = divmod(total, n_classes)
    return [base + (1 if k < extra else 0) for k in range(n_classes)]


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise XFELError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def simulate_dataset(
    out: Path,
    intensity: float = 1e15,
    n_train: int = 800,
    n_test: int = 200,
    seed: int = 0,
    pdb_files: tuple[Path, Path] | None = None,
    progress: bool = True,
    detector: Detector | None = None,
) -> Path:
    """Write a simulated two-conformation XFEL dataset in A4NN's layout under ``out``.

    ``n_train``/``n_test`` count images over both classes (80/20 by default); each split
    is balanced, the first conformation getting the extra image of an odd count. Labels
    are the order of ``pdb_files`` (default: the packaged adenylate kinase, open = 0,
    closed = 1). ``intensity`` is the fluence in photons/µm²/pulse (1e14, 1e15, 1e16 or
    any positive number). The same arguments and seed give byte-identical files. Returns
    ``out``. Existing files of an earlier dataset in ``out/images`` are an error (pick an
    empty folder) so that two datasets never mix.
    """
    out = Path(out)
    fluence = validate_intensity(intensity)
    n_train = _check_count("n_train", n_train, 2)
    n_test = _check_count("n_test", n_test, 0)
    seed = _check_count("seed", seed, 0)
    files = default_pdb_files() if pdb_files is None else tuple(Path(p) for p in pdb_files)
    if len(files) != 2:
        raise XFELError(f"pdb_files must be two PDB files (one per conformation), got {files}")
    tokens = [conformation_token(p) for p in files]
    for p, tok in zip(files, tokens, strict=True):
        if not tok:
            raise XFELError(f"PDB file name {p.name!r} has no letters or digits for a label")
    if tokens[0] == tokens[1]:
        raise XFELError(
            f"both PDB files give the conformation token {tokens[0]!r} ({files[0]}, "
            f"{files[1]}); rename one so that the file stems differ"
        )
    _check_empty(out)
    structures = [read_pdb(p) for p in files]
    if progress:
        print(f"computing the 3D diffraction intensity of {' and '.join(tokens)} (once) ...")
    simulator = XFELSimulator(structures, detector or Detector())
    return write_dataset(simulator, out, fluence, n_train, n_test, seed, progress)


def _check_empty(out: Path) -> None:
    for split in ("trainset", "testset"):
        d = out / "images" / split
        if d.is_dir() and any(d.glob("*.tif*")):
            raise XFELError(f"{d} already holds TIFF images; write the dataset to an empty folder")


def write_dataset(
    simulator: XFELSimulator,
    out: Path,
    intensity: float,
    n_train: int,
    n_test: int,
    seed: int,
    progress: bool = False,
) -> Path:
    """The image-writing half of :func:`simulate_dataset`, for a ready simulator of two
    conformations (labels in the order of ``simulator.structures``)."""
    out = Path(out)
    fluence = validate_intensity(intensity)
    _check_empty(out)
    files = [st.path for st in simulator.structures]
    tokens = [conformation_token(p) for p in files]
    structures = simulator.structures
    detector = simulator.detector

    rng = np.random.default_rng(seed)
    plan: list[tuple[str, int]] = []
    for split, total in (("trainset", n_train), ("testset", n_test)):
        labels = np.concatenate(
            [np.full(c, k) for k, c in enumerate(_class_counts(total, len(files)))]
        )
        plan += [(split, int(k)) for k in rng.permutation(labels)]
    rotations = Rotation.random(len(plan), random_state=rng)
    width = max(6, len(str(len(plan) - 1)))
    itok = intensity_token(fluence)

    for split in ("trainset", "testset"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
    angle_lines = [
        "# file qx qy qz qw rot tilt psi",
        "# rotation applied to the molecule (lab frame, beam along +z): scalar-last unit "
        "quaternion, and intrinsic ZYZ Euler angles in degrees",
    ]
    quats = rotations.as_quat()
    eulers = rotations.as_euler("ZYZ", degrees=True)
    photons = np.zeros(len(plan))
    with _progress(progress, len(plan), f"XFEL {itok}") as advance:
        for i, (split, label) in enumerate(plan):
            name = f"xfel_{itok}_{tokens[label]}_ptm{i:0{width}d}.tiff"
            image = simulator.sample(label, rotations[i], fluence, rng)
            photons[i] = image.sum()
            tifffile.imwrite(out / "images" / split / name, image, metadata=None)
            angle_lines.append(
                f"{split}/{name} " + " ".join(f"{v:.8f}" for v in (*quats[i], *eulers[i]))
            )
            advance()
    (out / "angles_list.txt").write_text("\n".join(angle_lines) + "\n")

    meta = {
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "intensity_photons_per_um2": fluence,
        "n_train": n_train,
        "n_test": n_test,
        "image_shape": list(simulator.shape),
        "dtype": "float32",
        "units": "photons",
        "labels": {tok: k for k, tok in enumerate(tokens)},
        "conformations": [
            {
                "token": tok,
                "label": k,
                "pdb_file": p.name,
                "sha256": _sha256(p),
                "n_atoms": st.n_atoms,
                "electrons": float(electron_counts(st.elements).sum()),
            }
            for k, (tok, p, st) in enumerate(zip(tokens, files, structures, strict=True))
        ],
        "class_counts": {
            split: {
                tok: sum(1 for s, lab in plan if s == split and lab == k)
                for k, tok in enumerate(tokens)
            }
            for split in ("trainset", "testset")
        },
        "detector": asdict(detector) | {"wavelength_A": detector.wavelength_a},
        "s_max_per_A": float(np.linalg.norm(simulator.s, axis=1).max()),
        "grid": {"n": simulator.volumes[0].n, "spacing_per_A": simulator.grid_spacing},
        "mean_photons_per_image": float(photons.mean()),
        "angles": "angles_list.txt: quaternion qx qy qz qw (scalar last) + ZYZ Euler deg",
    }
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


class _progress:
    """A rich progress bar when enabled; a no-op otherwise."""

    def __init__(self, enabled: bool, total: int, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self._bar = Progress(transient=False)
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)
