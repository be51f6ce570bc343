"""Adapters: a few real training steps in torch and Keras 3; a clear error without them."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from builders import flow_config, rgb_dataset

from preproc.batches import adapters
from preproc.batches.flow import flow
from preproc.errors import MissingDependencyError


@pytest.fixture
def cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=6)
    return flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                        class_mode="sparse")


def test_torch_dataloader_trains_a_tiny_model(cfg):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with flow(cfg, workers=2) as it:
        ds = adapters.torch_dataset(it)
        loader = torch.utils.data.DataLoader(ds, batch_size=4)
        x0, _ = next(iter(loader))
        assert x0.shape == (4, 3, 8, 8) and x0.dtype == torch.float32
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


def _by_name(x, names):
    """Rows of ``x`` keyed by file name."""
    return {n: x[k] for k, n in enumerate(names)}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sample_dataset_equals_the_batches_after_the_pool_started(cfg, num_workers):
    """The README's order: index the iterator (its pool forks), then a DataLoader with workers."""
    torch = pytest.importorskip("torch")
    with flow(cfg, workers=2) as it:
        first = it[0]  # starts preproc's pool: DataLoader workers must not inherit its use
        ds = adapters.torch_dataset(it)
        loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=num_workers,
                                             persistent_workers=num_workers > 0, pin_memory=False)
        xs, ys = zip(*[(x, y) for x, y in loader])
        x, y = torch.cat(xs), torch.cat(ys)
        expected = np.concatenate([it[i][0] for i in range(len(it))])
        names = [it.filename_of(int(j)) for i in range(len(it)) for j in it.batch_indices(i)]
    assert x.shape == (12, 3, 8, 8) and len(first[0]) == 4
    got = _by_name(x.permute(0, 2, 3, 1).numpy(), ds.filenames)
    want = _by_name(expected, names)
    for name in names:
        np.testing.assert_array_equal(got[name], want[name])
    assert y.tolist() == [float(c) for c in it.classes]


def test_sample_dataset_on_a_fresh_iterator_with_loader_workers(cfg):
    """No `daemonic processes are not allowed to have children`: nothing forks in the workers."""
    torch = pytest.importorskip("torch")
    with flow(cfg, workers=2) as it:
        loader = torch.utils.data.DataLoader(adapters.torch_dataset(it, channels_last=True),
                                             batch_size=4, shuffle=True, num_workers=2)
        for _ in range(2):  # epochs
            x, y = zip(*loader)
            assert torch.cat(x).shape == (12, 8, 8, 3) and len(torch.cat(y)) == 12
        assert it._engine is None  # the pool never started


def test_distributed_sampler_covers_an_epoch_exactly_once(cfg):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader, DistributedSampler

    with flow(cfg, workers=0) as it:
        ds = adapters.torch_dataset(it)
        seen = []
        for rank in range(2):
            sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
            sampler.set_epoch(1)
            for x, _ in DataLoader(ds, batch_size=2, sampler=sampler, num_workers=2):
                seen.extend(x.reshape(len(x), -1).numpy().tobytes() for x in x.split(1))
        every = [ds[i][0].numpy().tobytes() for i in range(len(ds))]
    assert sorted(seen) == sorted(every) and len(seen) == 12


def test_torch_iterable_in_a_loader_worker_says_what_to_do(cfg):
    torch = pytest.importorskip("torch")
    with flow(cfg, workers=2) as it:
        loader = torch.utils.data.DataLoader(adapters.torch_iterable(it), batch_size=None,
                                             num_workers=1)
        with pytest.raises(Exception, match="num_workers=0"):
            next(iter(loader))


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


def _tiny_keras_model(keras):
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_keras_fit_runs_and_advances_epochs(cfg):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    with flow(cfg, workers=2) as it:
        history = _tiny_keras_model(keras).fit(adapters.keras_dataset(it), epochs=2, verbose=0)
        assert it.epoch >= 2  # Keras calls on_epoch_end after every epoch (and once on close)
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))


@pytest.fixture
def split_cfg(tmp_path):
    rgb_dataset(tmp_path / "d", per_class=6)
    return flow_config(tmp_path, tmp_path / "d", target_size=[8, 8], batch_size=4, seed=0,
                        class_mode="sparse", validation_split=0.34)


def test_keras_fit_with_validation_flow(split_cfg):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    with flow(split_cfg, "training", workers=2) as train, \
            flow(split_cfg, "validation", workers=2) as val:
        history = _tiny_keras_model(keras).fit(adapters.keras_dataset(train), epochs=2, verbose=0,
                                               validation_data=adapters.keras_dataset(val))
    assert len(history.history["val_loss"]) == 2
    assert np.all(np.isfinite(history.history["val_loss"]))


def test_keras_multiprocessing_workers_give_the_pool_batches(cfg):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    with flow(cfg, workers=2) as it:
        expected = [it[i] for i in range(len(it))]  # the pool is running: workers must not use it
        ds = adapters.keras_dataset(it, workers=2, use_multiprocessing=True)
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

        adapter = PyDatasetAdapter(ds, shuffle=False)
        adapter.on_epoch_begin()
        got = list(adapter.get_numpy_iterator())
        adapter.on_epoch_end()
        history = _tiny_keras_model(keras).fit(ds, epochs=2, verbose=0)
    assert len(got) == len(expected)
    for (x, y), (ex, ey) in zip(got, expected):
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
    assert np.all(np.isfinite(history.history["loss"]))


def test_keras_without_backend_names_the_backend(cfg):
    """Without KERAS_BACKEND keras picks tensorflow: the message names that, and the fix."""
    import importlib.util
    import subprocess

    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras not installed")
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from preproc.batches import adapters\nfrom preproc.batches.flow import flow\n"
            f"it = flow({str(cfg.path)!r}, workers=0)\n"
            "try:\n    adapters.keras_dataset(it)\n"
            "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert "KerasBackendError" in out and "KERAS_BACKEND=torch" in out
    assert "needs the optional package `keras`" not in out


def test_missing_framework_names_the_extra(cfg, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    adapters._torch_classes.cache_clear()
    try:
        with pytest.raises(MissingDependencyError, match=r"preproc\[torch\]"):
            adapters.torch_dataset(flow(cfg, workers=0))
    finally:
        adapters._torch_classes.cache_clear()
