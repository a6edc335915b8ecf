"""The PDB reader and the XFEL diffraction simulator: physics, layout, determinism, errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy.spatial.transform import Rotation

from a4nn.data.pdb import PDBError, Structure, infer_element, read_pdb
from a4nn.data.xfel import (
    R_E,
    Detector,
    XFELError,
    XFELSimulator,
    centred_coords,
    default_pdb_files,
    electron_counts,
    form_factor,
    intensity_token,
    intensity_volume,
    simulate_dataset,
    validate_intensity,
)

# A coarse, low-resolution detector (same physics, |s| <= 0.033 1/Å): a tiny 3D grid, so
# that datasets for layout tests are made in well under a second.
SMALL = Detector(photon_energy_ev=6000.0, distance_m=0.8, pixel_size_m=2.4e-3, pixels=33)
NAME = re.compile(r"^xfel_(?P<i>[^_]+)_(?P<conf>[a-z0-9]+)_ptm(?P<id>\d+)\.tiff$")


def pdb_line(serial, name, resname, x, y, z, element="", record="ATOM"):
    return (
        f"{record:<6}{serial:>5} {name:<4} {resname:<4} {1:>4}    "
        f"{x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{0.0:6.2f}          {element:>2}"
    )


@pytest.fixture(scope="module")
def structures():
    return [read_pdb(p) for p in default_pdb_files()]


@pytest.fixture(scope="module")
def small_sim(structures):
    return XFELSimulator(structures, SMALL)


@pytest.fixture(scope="module")
def default_sim(structures):
    """The real 127×127 default detector (one precompute for the module)."""
    return XFELSimulator(structures)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("xfel") / "ds"
    simulate_dataset(out, 1e15, n_train=16, n_test=4, seed=3, progress=False, detector=SMALL)
    return out


# ------------------------------------------------------------------ PDB reader


def test_packaged_pdbs_read_with_charmm_elements(structures):
    for st in structures:
        assert st.n_atoms == 3341
        counts = dict(zip(*np.unique(st.elements, return_counts=True), strict=True))
        # CHARMM names: HG1, HD2... are hydrogens, CA/CB carbons, SD sulfur: no metals.
        assert counts == {"C": 1040, "H": 1685, "N": 289, "O": 320, "S": 7}
    assert electron_counts(structures[0].elements).sum() == pytest.approx(12616, abs=2)


@pytest.mark.parametrize(
    ("name", "res", "record", "element"),
    [
        (" CA ", "ALA", "ATOM", "C"),
        ("HG1 ", "THR", "ATOM", "H"),
        ("HG11", "VAL", "ATOM", "H"),
        (" SD ", "MET", "ATOM", "S"),
        ("SOD ", "SOD", "HETATM", "Na"),
        ("CLA ", "CLA", "HETATM", "Cl"),
        ("CA  ", "CA", "HETATM", "Ca"),
        ("FE  ", "HEM", "HETATM", "Fe"),
        ("ZN  ", "ZN", "HETATM", "Zn"),
        (" C1 ", "LIG", "HETATM", "C"),
    ],
)
def test_element_inferred_from_atom_name(name, res, record, element):
    assert infer_element(name, res, record) == element


def test_element_column_wins(tmp_path):
    p = tmp_path / "m.pdb"
    p.write_text(
        pdb_line(1, "CA", "CA", 0, 0, 0, "CA", "HETATM")
        + "\n"
        + pdb_line(2, "HG1", "THR", 1, 2, 3)
        + "\nEND\n"
    )
    st = read_pdb(p)
    assert list(st.elements) == ["Ca", "H"]
    np.testing.assert_allclose(st.coords[1], [1, 2, 3])


def test_first_model_and_first_altloc_only(tmp_path):
    a = pdb_line(1, "N", "MET", 0, 0, 0)
    alt_b = pdb_line(2, "N", "MET", 5, 5, 5)
    alt_b = alt_b[:16] + "B" + alt_b[17:]
    second_model = pdb_line(3, "C", "MET", 9, 9, 9)
    p = tmp_path / "models.pdb"
    p.write_text("MODEL 1\n" + a + "\n" + alt_b + "\nENDMDL\nMODEL 2\n" + second_model + "\n")
    st = read_pdb(p)
    assert st.n_atoms == 1 and list(st.elements) == ["N"]


def test_pdb_missing_file_is_named(tmp_path):
    with pytest.raises(PDBError, match=r"nope\.pdb does not exist"):
        read_pdb(tmp_path / "nope.pdb")


def test_pdb_without_atoms_is_named(tmp_path):
    p = tmp_path / "empty.pdb"
    p.write_text("REMARK nothing here\nEND\n")
    with pytest.raises(PDBError, match=r"empty\.pdb has no ATOM or HETATM records"):
        read_pdb(p)


def test_pdb_unparseable_line_names_file_and_line(tmp_path):
    p = tmp_path / "bad.pdb"
    good = pdb_line(1, "N", "MET", 0, 0, 0)
    bad = good[:30] + "   x.abc" + good[38:]
    p.write_text("REMARK\n" + good + "\n" + bad + "\n")
    with pytest.raises(PDBError, match=r"bad\.pdb, line 3: cannot read x/y/z"):
        read_pdb(p)


def test_unknown_element_is_named(tmp_path):
    p = tmp_path / "xx.pdb"
    p.write_text(pdb_line(1, "X1", "LIG", 0, 0, 0, "Xx", "HETATM") + "\n")
    st = read_pdb(p)
    with pytest.raises(XFELError, match=r"no X-ray form factor for element 'Xx'"):
        XFELSimulator([st], SMALL)


# ------------------------------------------------------------------ physics


def test_centre_pixel_follows_thomson_formula(small_sim, structures):
    """s = 0 at the beam centre: expected = Φ r_e² ΔΩ (total electrons)², P = 1."""
    c = SMALL.pixels // 2
    for k, st in enumerate(structures):
        lam = small_sim.expected(k, Rotation.random(random_state=np.random.default_rng(k)), 1e15)
        omega = SMALL.pixel_size_m**2 / SMALL.distance_m**2
        want = 1e15 * 1e12 * R_E**2 * omega * electron_counts(st.elements).sum() ** 2
        assert lam[c, c] == pytest.approx(want, rel=1e-4)


def test_interpolated_intensity_matches_direct_sum(structures, default_sim):
    """The sliced grid agrees with Σ_j f_j exp(2πi s·r_j) evaluated exactly."""
    st = structures[1]
    det = Detector()
    rng = np.random.default_rng(1)
    rot = Rotation.random(random_state=rng)
    s = rot.inv().apply(det.geometry()[0])[rng.choice(det.pixels**2, 200, replace=False)]
    xyz, s_abs = centred_coords(st), np.linalg.norm(s, axis=1)
    amp = np.zeros(len(s), complex)
    for e in np.unique(st.elements):
        amp += form_factor(e, s_abs) * np.exp(2j * np.pi * s @ xyz[st.elements == e].T).sum(1)
    exact = np.abs(amp) ** 2
    approx = default_sim.volumes[1].sample(s)
    assert np.abs(approx - exact).sum() / exact.sum() < 0.015


def test_rotation_rotates_the_molecule(structures):
    """Rotating the pattern by R equals simulating the molecule with coordinates R·r."""
    st = structures[0]
    rot = Rotation.from_euler("ZYZ", [30, 50, -70], degrees=True)
    turned = Structure(st.path, rot.apply(st.coords), st.elements)
    sim = XFELSimulator([st, turned], SMALL)
    a = sim.expected(0, rot, 1e16)
    b = sim.expected(1, Rotation.identity(), 1e16)
    assert np.abs(a - b).sum() / b.sum() < 0.01
    assert np.abs(a - sim.expected(0, Rotation.identity(), 1e16)).sum() / b.sum() > 0.05


def test_friedel_symmetry_of_volume(structures):
    v = intensity_volume(structures[0], 0.02, 0.004).values
    np.testing.assert_allclose(v, v[::-1, ::-1, ::-1], rtol=1e-5)


def test_photons_scale_with_fluence(small_sim):
    rng = np.random.default_rng(0)
    rots = Rotation.random(30, random_state=rng)
    means = []
    for fluence in (1e14, 1e15, 1e16):
        totals = [small_sim.sample(i % 2, rots[i], fluence, rng).sum() for i in range(30)]
        means.append(np.mean(totals))
    assert means[1] / means[0] == pytest.approx(10, rel=0.1)
    assert means[2] / means[1] == pytest.approx(10, rel=0.05)


def test_default_detector_low_fluence_is_photon_starved(default_sim):
    rng = np.random.default_rng(0)
    rots = Rotation.random(6, random_state=rng)
    low = np.stack([default_sim.sample(i % 2, rots[i], 1e14, rng) for i in range(6)])
    high = np.stack([default_sim.sample(i % 2, rots[i], 1e16, rng) for i in range(6)])
    assert low.shape == (6, 127, 127) and low.dtype == np.float32
    assert (low == 0).mean() > 0.95  # a few hundred photons on 16,129 pixels
    assert 100 < low.sum(axis=(1, 2)).mean() < 2000
    assert np.all(low == np.round(low)) and low.min() >= 0
    assert (high == 0).mean() < (low == 0).mean()


def test_conformations_give_different_patterns(small_sim):
    """Open adenylate kinase is larger (Rg 19.5 vs 16.6 Å): its orientation-averaged
    intensity falls off faster than the closed one's."""
    rots = Rotation.random(40, random_state=np.random.default_rng(2))
    mean = [np.mean([small_sim.expected(k, r, 1e15) for r in rots], axis=0) for k in (0, 1)]
    c = SMALL.pixels // 2
    ring = mean[0][c, c + 6 :].sum() / mean[0][c, c], mean[1][c, c + 6 :].sum() / mean[1][c, c]
    assert ring[0] < 0.9 * ring[1]
    same_rot = [small_sim.expected(k, rots[0], 1e15) for k in (0, 1)]
    assert np.abs(same_rot[0] - same_rot[1]).sum() / same_rot[1].sum() > 0.1


# ------------------------------------------------------------------ dataset layout


def test_layout_names_balance_and_split(dataset):
    train = sorted((dataset / "images" / "trainset").iterdir())
    test = sorted((dataset / "images" / "testset").iterdir())
    assert len(train) == 16 and len(test) == 4
    confs = {"trainset": [], "testset": []}
    ids = set()
    for split, files in (("trainset", train), ("testset", test)):
        for f in files:
            m = NAME.match(f.name)
            assert m, f.name
            assert m["i"] == "1e15"
            confs[split].append(m["conf"])
            ids.add(m["id"])
            image = tifffile.imread(f)
            assert image.dtype == np.float32 and image.shape == (33, 33)
    assert len(ids) == 20
    assert sorted(confs["trainset"]) == ["adkclosed"] * 8 + ["adkopen"] * 8
    assert sorted(confs["testset"]) == ["adkclosed"] * 2 + ["adkopen"] * 2
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["labels"] == {"adkopen": 0, "adkclosed": 1}
    assert meta["class_counts"]["trainset"] == {"adkopen": 8, "adkclosed": 8}
    assert meta["detector"]["pixels"] == 33 and meta["seed"] == 3


def test_angles_file_lists_every_image_with_unit_quaternion(dataset):
    lines = [ln for ln in (dataset / "angles_list.txt").read_text().splitlines() if ln[:1] != "#"]
    assert len(lines) == 20
    files = {f"{p.parent.name}/{p.name}" for p in (dataset / "images").glob("*/*.tiff")}
    assert {ln.split()[0] for ln in lines} == files
    for ln in lines:
        q = np.array(ln.split()[1:5], dtype=float)
        euler = np.array(ln.split()[5:8], dtype=float)
        assert np.linalg.norm(q) == pytest.approx(1, abs=1e-6)
        r1, r2 = Rotation.from_quat(q), Rotation.from_euler("ZYZ", euler, degrees=True)
        assert (r1 * r2.inv()).magnitude() < 1e-5


def test_same_seed_is_byte_identical_other_seed_differs(dataset, tmp_path):
    again = simulate_dataset(tmp_path / "a", 1e15, 16, 4, seed=3, progress=False, detector=SMALL)
    other = simulate_dataset(tmp_path / "b", 1e15, 16, 4, seed=4, progress=False, detector=SMALL)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel
    assert (dataset / "angles_list.txt").read_bytes() != (other / "angles_list.txt").read_bytes()


def test_odd_counts_give_first_conformation_the_extra_image(tmp_path):
    out = simulate_dataset(tmp_path / "o", 1e14, 5, 3, seed=0, progress=False, detector=SMALL)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["class_counts"] == {
        "trainset": {"adkopen": 3, "adkclosed": 2},
        "testset": {"adkopen": 2, "adkclosed": 1},
    }
    assert all(p.name.startswith("xfel_1e14_") for p in out.glob("images/*/*.tiff"))


def test_custom_pdb_files_and_progress(tmp_path, capsys):
    a, b = default_pdb_files()
    pa, pb = tmp_path / "Conf_A.pdb", tmp_path / "conf-B2.pdb"
    pa.write_bytes(a.read_bytes())
    pb.write_bytes(b.read_bytes())
    out = simulate_dataset(tmp_path / "c", 2.5e14, 4, 2, pdb_files=(pa, pb), detector=SMALL)
    names = sorted(p.name for p in out.glob("images/*/*.tiff"))
    assert {NAME.match(n)["conf"] for n in names} == {"confa", "confb2"}
    assert all(n.startswith("xfel_2.5e14_") for n in names)
    assert "XFEL" in capsys.readouterr().out


def test_default_detector_dataset_is_127(tmp_path):
    out = simulate_dataset(tmp_path / "d", "high", n_train=2, n_test=2, progress=False)
    images = [tifffile.imread(p) for p in sorted(out.glob("images/*/*.tiff"))]
    assert len(images) == 4 and all(i.shape == (127, 127) for i in images)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["detector"]["photon_energy_ev"] == 6000.0
    assert meta["detector"]["wavelength_A"] == pytest.approx(2.0664, abs=1e-4)
    assert meta["intensity_photons_per_um2"] == 1e16


# ------------------------------------------------------------------ bad input


def test_intensity_tokens_and_names():
    assert intensity_token(1e15) == "1e15"
    assert intensity_token(2.5e14) == "2.5e14"
    assert validate_intensity("low") == 1e14
    assert validate_intensity("1e16") == 1e16


@pytest.mark.parametrize("bad", [0, -1e15, math.nan, math.inf, "bright", True, None])
def test_bad_intensity_is_rejected(bad, tmp_path):
    with pytest.raises(XFELError, match=r"intensity"):
        simulate_dataset(tmp_path, bad, 4, 2, progress=False, detector=SMALL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 1}, r"n_train must be an integer >= 2, got 1"),
        ({"n_train": 2.5}, r"n_train must be an integer >= 2, got 2.5"),
        ({"n_test": -1}, r"n_test must be an integer >= 0, got -1"),
        ({"seed": -3}, r"seed must be an integer >= 0, got -3"),
    ],
)
def test_bad_counts_are_rejected(kwargs, message, tmp_path):
    args = {"n_train": 4, "n_test": 2} | kwargs
    with pytest.raises(XFELError, match=message):
        simulate_dataset(tmp_path, 1e15, progress=False, detector=SMALL, **args)


def test_same_conformation_tokens_are_rejected(tmp_path):
    a = default_pdb_files()[0]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "adk_open.pdb").write_bytes(a.read_bytes())
    with pytest.raises(XFELError, match=r"both PDB files give the conformation token 'adkopen'"):
        simulate_dataset(tmp_path / "o", pdb_files=(a, tmp_path / "x" / "adk_open.pdb"))


def test_missing_pdb_file_is_named(tmp_path):
    with pytest.raises(PDBError, match=r"missing\.pdb does not exist"):
        simulate_dataset(
            tmp_path / "o", pdb_files=(default_pdb_files()[0], tmp_path / "missing.pdb")
        )


def test_non_empty_output_is_rejected(dataset):
    with pytest.raises(XFELError, match=r"trainset already holds TIFF images"):
        simulate_dataset(dataset, 1e15, 4, 2, progress=False, detector=SMALL)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"photon_energy_ev": 0}, r"Detector.photon_energy_ev must be a positive number"),
        ({"distance_m": -1.0}, r"Detector.distance_m must be a positive number"),
        ({"pixel_size_m": math.nan}, r"Detector.pixel_size_m must be a positive number"),
        ({"pixels": 1}, r"Detector.pixels must be an integer >= 2"),
    ],
)
def test_bad_detector_is_rejected(kwargs, message):
    with pytest.raises(XFELError, match=message):
        Detector(**kwargs)


def test_packaged_proteins_are_package_data():
    for p in default_pdb_files():
        assert Path(p).is_file() and Path(p).stat().st_size > 100_000
