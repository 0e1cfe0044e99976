"""Mini-batches over tensors that already live on the device (no DataLoader workers,
no host round trip): the synthetic worlds are generated straight onto the device.

:class:`TensorBatches` is the library's one mini-batch iterator: chapters pass it to
:func:`cvbook.core.fit` (it is re-iterable and has a ``len``), the data sources of
:mod:`cvbook.data.sources` build theirs on it, and an index-only iterator
(``TensorBatches(torch.arange(n), ...)``) serves losses that gather their own rows.

Example:
    >>> import torch
    >>> b = TensorBatches(torch.arange(5), batch_size=2, shuffle=False)
    >>> [t.tolist() for (t,) in b], len(b)
    ([[0, 1], [2, 3], [4]], 3)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from cvbook.core.validate import check_int


class TensorBatches:
    """Iterate over aligned tensors in mini-batches, reshuffled every pass.

    Args:
        *tensors: tensors with the same first dimension ``N``, on one device.
        batch_size: mini-batch size (the last batch may be smaller unless ``drop_last``).
        shuffle: draw a new permutation each pass from ``generator``.
        generator: a ``torch.Generator`` on the tensors' device (for shuffling).
        drop_last: drop the last incomplete batch.
        transform: applied to each batch of the *first* tensor (e.g. a batched,
            on-device augmentation followed by normalisation); ``None``: none.

    ``len()`` is the number of batches per pass, so :func:`cvbook.core.fit` can size its
    progress bar.
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None, drop_last: bool = False,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if not tensors:
            raise ValueError("give at least one tensor")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"tensors[{i}] must be a torch.Tensor, got {type(t).__name__}")
            if t.shape[0] != n:
                raise ValueError(f"all tensors must have the same length; tensors[0] has {n}, "
                                 f"tensors[{i}] has {t.shape[0]}")
            if t.device != tensors[0].device:
                raise ValueError("all tensors must be on the same device")
        if n == 0:
            raise ValueError("tensors are empty")
        self.tensors = tensors
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        self.shuffle = shuffle
        self.generator = generator
        self.drop_last = drop_last
        self.transform = transform
        self.n = n

    def __len__(self) -> int:
        if self.drop_last:
            return max(1, self.n // self.batch_size)
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        dev = self.tensors[0].device
        if self.shuffle:
            order = torch.randperm(self.n, generator=self.generator,
                                   device=self.generator.device if self.generator else "cpu")
            order = order.to(dev)
        else:
            order = torch.arange(self.n, device=dev)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            batch = tuple(t[idx] for t in self.tensors)
            if self.transform is not None:
                batch = (self.transform(batch[0]),) + batch[1:]
            yield batch
