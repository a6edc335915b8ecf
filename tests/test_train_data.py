"""TensorData.on: one device copy per process, never a stale one.

The "meta" device stands in for a GPU here: `.to("meta")` makes a tensor with the same
shape and no storage, so the cache's behaviour is checked without CUDA.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from a4nn.train import TensorData

META = torch.device("meta")


def _data(n: int = 6) -> TensorData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 1, 4, 4)).astype(np.float32)
    y = np.arange(n) % 2
    return TensorData.from_arrays(x, y, x[:2], y[:2])


def test_cpu_data_is_used_in_place():
    data = _data()
    assert data.on(torch.device("cpu")) is data


def test_device_copy_is_made_once_and_reused():
    data = _data()
    first = data.on(META)
    assert first is not data
    assert first.x_train.device.type == "meta"
    assert first.x_train.shape == data.x_train.shape
    assert first.num_classes == data.num_classes
    assert data.on(META) is first


def test_reassigned_tensor_gets_a_fresh_copy():
    data = _data()
    stale = data.on(META)
    data.x_train = torch.zeros(9, 1, 4, 4)
    fresh = data.on(META)
    assert fresh is not stale
    assert fresh.x_train.shape[0] == 9


def test_replaced_dataclass_does_not_share_the_cache():
    data = _data()
    data.on(META)
    other = dataclasses.replace(data, x_train=torch.zeros(5, 1, 4, 4))
    assert other.on(META).x_train.shape[0] == 5
    assert data.on(META).x_train.shape[0] == 6
