"""Loading image folders (ours and the A4NN release layout) and npz arrays; every bad file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from a4nn.data.loaders import (
    NPZ_KEYS,
    DataError,
    DataSpec,
    conformation_of,
    infer_label_map,
    load_dataset,
    load_image_folder,
    load_npz,
    resize_images,
)
from a4nn.data.xfel import Detector, simulate_dataset

SMALL = Detector(photon_energy_ev=6000.0, distance_m=0.8, pixel_size_m=2.4e-3, pixels=33)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("loaders") / "xfel"
    return simulate_dataset(out, 1e16, n_train=16, n_test=6, seed=1, progress=False, detector=SMALL)


def write_a4nn_release(root: Path, n: int = 6, size: int = 10) -> Path:
    """A folder in the original A4NN release layout (EF2 1n0u / 1n0vc)."""
    rng = np.random.default_rng(0)
    for split, count in (("trainset", n), ("testset", n // 2)):
        d = root / "images" / split
        d.mkdir(parents=True)
        for i in range(count):
            conf = ("1n0u", "1n0vc")[i % 2]
            image = rng.poisson(2.0 + 3 * (i % 2), size=(size, size)).astype(np.float32)
            tifffile.imwrite(d / f"diffraction_1e15_{conf}_ptm{i:05d}.tiff", image)
    return root


def test_conformation_token_is_whole_field():
    assert conformation_of("xfel_1e15_adkopen_ptm000123.tiff") == "adkopen"
    assert conformation_of("x_1e14_1n0vc_ptm7.tiff") == "1n0vc"
    assert conformation_of("x_1e14_1n0u_ptm7.tif") == "1n0u"
    assert conformation_of("1n0vc_ptm00001.tiff") == "1n0vc"


def test_simulator_output_round_trip(sim):
    x, y, names = load_image_folder(sim, "trainset")
    assert x.shape == (16, 1, 33, 33) and x.dtype == np.float32 and y.dtype == np.int64
    assert names == sorted(names) and len(names) == 16
    labels = json.loads((sim / "dataset.json").read_text())["labels"]
    for image, label, name in zip(x, y, names, strict=True):
        assert label == labels[conformation_of(name)]
        np.testing.assert_array_equal(image[0], tifffile.imread(sim / "images/trainset" / name))
    assert sorted(np.bincount(y)) == [8, 8]


def test_a4nn_release_default_labels(tmp_path):
    root = write_a4nn_release(tmp_path / "ef2")
    assert infer_label_map(root) == {"1n0u": 0, "1n0vc": 1}
    x, y, names = load_image_folder(root, "trainset")
    for label, name in zip(y, names, strict=True):
        assert label == (1 if "_1n0vc_" in name else 0)
    x2, y2, _ = load_image_folder(root, "trainset", {"1n0u": 1, "1n0vc": 0})
    np.testing.assert_array_equal(y2, 1 - y)


def test_unknown_tokens_get_sorted_labels(tmp_path):
    d = tmp_path / "trainset"
    d.mkdir()
    for tok in ("beta", "alpha"):
        tifffile.imwrite(d / f"p_{tok}_ptm1.tiff", np.zeros((4, 4), np.float32))
    assert infer_label_map(tmp_path) == {"alpha": 0, "beta": 1}
    _, y, names = load_image_folder(tmp_path, "trainset")
    assert dict(zip(names, y.tolist(), strict=True)) == {
        "p_alpha_ptm1.tiff": 0,
        "p_beta_ptm1.tiff": 1,
    }


def test_load_dataset_testset_validation_log1p(sim):
    data = load_dataset(DataSpec(format="folder", path=sim, normalization="log1p"))
    raw, _, _ = load_image_folder(sim, "testset")
    assert data.x_train.shape == (16, 1, 33, 33) and data.x_val.shape == (6, 1, 33, 33)
    np.testing.assert_allclose(data.x_val, np.log1p(raw), rtol=1e-6)
    assert data.names == ["adkopen", "adkclosed"] and data.num_classes == 2
    assert len(data.val_files) == 6 and data.val_files[0].endswith(".tiff")


def test_load_dataset_split_is_stratified_seeded_and_disjoint(sim):
    spec = DataSpec(path=sim, validation="split", val_fraction=0.25, seed=5)
    a, b = load_dataset(spec), load_dataset(spec)
    assert a.val_files == b.val_files
    assert len(a.val_files) == 4 and np.bincount(a.y_val).tolist() == [2, 2]
    assert not set(a.val_files) & set(a.train_files)
    assert len(a.train_files) == 12
    c = load_dataset(DataSpec(path=sim, validation="split", val_fraction=0.25, seed=6))
    assert c.val_files != a.val_files


def test_per_image_and_dataset_normalization(sim):
    per = load_dataset(DataSpec(path=sim, normalization="per_image"))
    np.testing.assert_allclose(per.x_train.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(per.x_train.std(axis=(1, 2, 3)), 1, atol=1e-4)
    ds = load_dataset(DataSpec(path=sim, normalization="dataset"))
    assert abs(ds.x_train.mean()) < 1e-5 and ds.x_train.std() == pytest.approx(1, abs=1e-4)
    assert abs(ds.x_val.mean()) > 1e-4  # validation uses the training statistics


def test_per_image_keeps_empty_images_finite():
    from a4nn.data.loaders import normalize

    x = np.zeros((2, 1, 4, 4), np.float32)
    a, b = normalize(x, x, "per_image")
    assert np.isfinite(a).all() and (a == 0).all()


def test_resize_area_keeps_mean_photon_density(sim):
    data = load_dataset(DataSpec(path=sim, resize=11))
    raw, _, _ = load_image_folder(sim, "trainset")
    assert data.x_train.shape == (16, 1, 11, 11)
    np.testing.assert_allclose(data.x_train.mean(axis=(2, 3)), raw.mean(axis=(2, 3)), rtol=1e-4)
    assert resize_images(raw[:2], 40).shape == (2, 1, 40, 40)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((6, 8, 8)).astype(np.float64),
        "y_train": np.array([0, 1, 0, 1, 0, 1]),
        "x_test": rng.random((2, 1, 8, 8)).astype(np.float32),
        "y_test": np.array([1, 0], dtype=np.int32),
    }
    p = tmp_path / "d.npz"
    np.savez(p, **arrays, class_names=np.array(["a", "b"]))
    x_tr, y_tr, x_te, y_te = load_npz(p)
    assert x_tr.shape == (6, 1, 8, 8) and x_tr.dtype == np.float32
    assert y_te.dtype == np.int64 and y_te.tolist() == [1, 0]
    np.testing.assert_allclose(x_tr[:, 0], arrays["x_train"], rtol=1e-6)
    data = load_dataset(DataSpec(format="npz", path=p))
    assert data.names == ["a", "b"] and data.x_val.shape == (2, 1, 8, 8)
    split = load_dataset(DataSpec(format="npz", path=p, validation="split", val_fraction=0.34))
    assert len(split.y_val) == 2 and len(split.y_train) == 4


# ------------------------------------------------------------------ bad input


def _folder_with(tmp_path: Path, images: dict[str, np.ndarray]) -> Path:
    d = tmp_path / "ds" / "images" / "trainset"
    d.mkdir(parents=True)
    for name, image in images.items():
        tifffile.imwrite(d / name, image)
    return tmp_path / "ds"


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match=r"dataset folder .*nowhere does not exist"):
        load_dataset(DataSpec(path=tmp_path / "nowhere"))


def test_missing_split_folder(tmp_path):
    (tmp_path / "images" / "trainset").mkdir(parents=True)
    with pytest.raises(DataError, match=r"has no testset folder"):
        load_image_folder(tmp_path, "testset", {"a": 0})


def test_empty_image_folder(tmp_path):
    (tmp_path / "images" / "trainset").mkdir(parents=True)
    with pytest.raises(DataError, match=r"trainset holds no \.tiff/\.tif images"):
        load_image_folder(tmp_path, "trainset", {"a": 0})


def test_rgb_image_is_named(tmp_path):
    root = _folder_with(
        tmp_path,
        {
            "p_a_ptm1.tiff": np.zeros((6, 6), np.float32),
            "p_b_ptm2.tiff": np.zeros((6, 6, 3), np.uint8),
        },
    )
    with pytest.raises(DataError, match=r"p_b_ptm2\.tiff has shape \(6, 6, 3\) \(an RGB"):
        load_image_folder(root, "trainset")


def test_wrong_size_image_is_named(tmp_path):
    root = _folder_with(
        tmp_path,
        {
            "p_a_ptm1.tiff": np.zeros((6, 6), np.float32),
            "p_b_ptm2.tiff": np.zeros((5, 6), np.float32),
        },
    )
    with pytest.raises(DataError, match=r"p_b_ptm2\.tiff is 5x6 but p_a_ptm1\.tiff is 6x6"):
        load_image_folder(root, "trainset")


@pytest.mark.parametrize("content", [b"II*\x00garbage", b"not a tiff at all", b""])
def test_corrupt_tiff_is_named(tmp_path, content):
    root = _folder_with(tmp_path, {"p_a_ptm1.tiff": np.zeros((6, 6), np.float32)})
    (root / "images" / "trainset" / "p_b_ptm2.tiff").write_bytes(content)
    with pytest.raises(DataError, match=r"p_b_ptm2\.tiff cannot be read as TIFF"):
        load_image_folder(root, "trainset")


def test_nan_image_is_named(tmp_path):
    bad = np.zeros((6, 6), np.float32)
    bad[1, 1] = np.nan
    root = _folder_with(tmp_path, {"p_a_ptm1.tiff": bad})
    with pytest.raises(DataError, match=r"p_a_ptm1\.tiff contains NaN"):
        load_image_folder(root, "trainset")


def test_badly_named_image(tmp_path):
    root = _folder_with(tmp_path, {"picture.tiff": np.zeros((6, 6), np.float32)})
    with pytest.raises(DataError, match=r"'picture\.tiff' does not follow"):
        load_image_folder(root, "trainset")


def test_token_outside_label_map(tmp_path):
    root = _folder_with(tmp_path, {"p_1n0v_ptm1.tiff": np.zeros((6, 6), np.float32)})
    with pytest.raises(DataError, match=r"p_1n0v_ptm1\.tiff has conformation '1n0v'"):
        load_image_folder(root, "trainset", {"1n0u": 0, "1n0vc": 1})


def test_single_class_training_data(tmp_path):
    root = _folder_with(tmp_path, {"p_a_ptm1.tiff": np.zeros((6, 6), np.float32)})
    with pytest.raises(DataError, match=r"holds 1 class\(es\); need at least 2"):
        load_dataset(DataSpec(path=root, validation="split", val_fraction=0.5))


def test_bad_dataset_json(tmp_path):
    root = _folder_with(tmp_path, {"p_a_ptm1.tiff": np.zeros((6, 6), np.float32)})
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match=r"dataset\.json is not a valid dataset\.json"):
        load_image_folder(root, "trainset")


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"npz file .*none\.npz does not exist"):
        load_npz(tmp_path / "none.npz")


def test_npz_missing_keys(tmp_path):
    p = tmp_path / "k.npz"
    np.savez(p, x_train=np.zeros((2, 4, 4)), y_train=np.zeros(2, int))
    with pytest.raises(DataError, match=r"k\.npz lacks key\(s\) \['x_test', 'y_test'\]"):
        load_npz(p)


def test_npz_corrupt(tmp_path):
    p = tmp_path / "c.npz"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match=r"c\.npz cannot be read"):
        load_npz(p)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"x_train": np.zeros((2, 3, 4, 4))}, r"x_train has shape \(2, 3, 4, 4\)"),
        ({"y_train": np.zeros(3, int)}, r"y_train has shape \(3,\); expected \(2,\)"),
        ({"y_test": np.array([0.5, 1.0])}, r"y_test must hold non-negative integer labels"),
        ({"x_test": np.zeros((2, 5, 5))}, r"x_train images are \(4, 4\) but x_test"),
    ],
)
def test_npz_bad_shapes(tmp_path, override, message):
    arrays = {
        "x_train": np.zeros((2, 4, 4)),
        "y_train": np.array([0, 1]),
        "x_test": np.zeros((2, 4, 4)),
        "y_test": np.array([0, 1]),
    } | override
    assert set(arrays) == set(NPZ_KEYS)
    p = tmp_path / "s.npz"
    np.savez(p, **arrays)
    with pytest.raises(DataError, match=message):
        load_npz(p)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"normalization": "zscore"}, r"normalization must be one of .* got 'zscore'"),
        ({"validation": "kfold"}, r"validation must be 'testset' or 'split', got 'kfold'"),
        ({"validation": "split", "val_fraction": 1.5}, r"val_fraction must be in \(0, 1\)"),
        ({"resize": 0}, r"resize must be a positive integer or None, got 0"),
        ({"format": "hdf5"}, r"format must be 'folder' or 'npz', got 'hdf5'"),
    ],
)
def test_bad_spec_values(sim, kwargs, message):
    with pytest.raises(DataError, match=message):
        load_dataset(DataSpec(path=sim, **kwargs))


def test_val_fraction_too_small_for_a_class(sim):
    with pytest.raises(DataError, match=r"val_fraction 0.01 leaves class 0"):
        load_dataset(DataSpec(path=sim, validation="split", val_fraction=0.01))
