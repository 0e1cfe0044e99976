"""AutoCorrect: deep inductive alignment of noisy geometric annotations.

Chen, Xie, Vedaldi, Zisserman, BMVC 2019 (arXiv:1908.05263). No official code exists.

* :mod:`cvbook.autocorrect.model`: the correction network ``Φ(x, ã)`` (image crop,
  annotation mask, spatial memory channel -> similarity), its inputs, and the losses in
  annotation space and (for the ablation) in parameter space;
* :mod:`cvbook.autocorrect.experiment`: the consistency loss on noisy annotations and the
  self-supervised loss on clean ones (a sampled ``t``, the target anchored to it),
  sequential correction with the memory map updated in place, the annotation IoU, and
  the averaging argument in closed form;
* :mod:`cvbook.autocorrect.presets`: the presets (:data:`PRESETS`: ``cpu`` on the aerial
  world of :mod:`cvbook.data.aerial`, ``full`` on INRIA Aerial Image Labeling).

Sources of the formulation: the chapter's brief (``papers/10_autocorrect.md``). Section 3
of the paper could not be checked in this session: arXiv:1908.05263 is in none of the
searchable corpora (queried: ``pages`` and ``docs`` with the title, the arXiv number and
the method's terms; an exact-string search for the arXiv number in public code found
nothing). Until it is checked, these points follow the brief and are marked as such: the
similarity group ``(t, theta, s)`` for ``G``; the regression of ``t⁻¹`` from ``t · ã``
as the consistency loss; the loss measured in annotation space; the memory channel
rasterising the other annotations, updated as objects are corrected one at a time.
Choices of this implementation (not from the paper): transforms about the annotation's
centroid (composition is then addition, so the order of ``t`` and ``n`` does not
matter); the soft-mask squared difference as the annotation-space loss; the network.

Everything is re-exported here: ``from cvbook.autocorrect import AutoCorrectNet``.
"""

from cvbook.autocorrect.experiment import (
    MODES,
    ObjectData,
    annotation_iou,
    correct_annotations,
    l2_optimal_correction,
    make_model,
    prepare_objects,
    train_autocorrect,
)
from cvbook.autocorrect.model import (
    AutoCorrectNet,
    annotation_loss,
    crop_origin,
    object_inputs,
    parameter_loss,
)
from cvbook.autocorrect.presets import (
    INRIA_CITIES,
    LOSSES,
    PRESETS,
    AutoCorrectConfig,
    inria_tiles,
)

__all__ = [
    "INRIA_CITIES",
    "LOSSES",
    "MODES",
    "PRESETS",
    "AutoCorrectConfig",
    "AutoCorrectNet",
    "ObjectData",
    "annotation_iou",
    "annotation_loss",
    "correct_annotations",
    "crop_origin",
    "inria_tiles",
    "l2_optimal_correction",
    "make_model",
    "object_inputs",
    "parameter_loss",
    "prepare_objects",
    "train_autocorrect",
]
