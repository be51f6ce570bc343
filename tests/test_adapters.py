"""Adapters: a few real training steps in torch and Keras 3; a clear error without them."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from flowkit import rgb_dataset, write_config

from preproc.batches import adapters
from preproc.errors import MissingDependencyError
from preproc.batches.flow import flow


@pytest.fixture
def cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=6)
    return write_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                        class_mode="sparse")


def test_torch_dataloader_trains_a_tiny_model(cfg):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with flow(cfg, workers=2) as it:
        ds = adapters.torch_dataset(it)
        loader = torch.utils.data.DataLoader(ds, batch_size=None)
        x0, _ = next(iter(loader))
        assert x0.shape == (4, 3, 8, 8) and x0.dtype == torch.float32
        np.testing.assert_array_equal(x0.permute(0, 2, 3, 1).numpy(), it[0][0])
        model(x0)  # materialize the lazy layer
        before = [p.detach().clone() for p in model.parameters()]
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y.long())
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_torch_iterable_reshuffles_each_pass(cfg):
    torch = pytest.importorskip("torch")
    with flow(cfg, workers=0) as it:
        loader = torch.utils.data.DataLoader(adapters.torch_iterable(it), batch_size=None)
        passes = [[(x, y) for x, y in loader] for _ in range(2)]
        orders = [it.epoch_order(0), it.epoch_order(1)]
        classes = np.asarray(it.classes)
    assert it.epoch == 2
    images = [[bytes(img.numpy()) for x, _ in p for img in x] for p in passes]
    labels = [torch.cat([y for _, y in p]).tolist() for p in passes]
    assert len(images[0]) == len(images[1]) == 12
    assert images[0] != images[1]  # another order in the second pass ...
    assert sorted(images[0]) == sorted(images[1])  # ... of the same images
    for order, got in zip(orders, labels):  # each pass in its epoch's order
        assert got == classes[order].tolist()
    assert not np.array_equal(*orders)


def test_keras_fit_runs_and_advances_epochs(cfg):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    with flow(cfg, workers=2) as it:
        model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
        model.compile(optimizer="sgd",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(adapters.keras_dataset(it), epochs=2, verbose=0)
        assert it.epoch >= 2  # Keras calls on_epoch_end after every epoch (and once on close)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))


def test_missing_framework_names_the_extra(cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    adapters._torch_classes.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"preproc\[torch\]"):
            adapters.torch_dataset(flow(cfg, workers=0))
    finally:
        adapters._torch_classes.cache_clear()
