"""FixRes: fixing the train-test resolution discrepancy (Touvron, Vedaldi, Douze, Jégou,
NeurIPS 2019, arXiv:1906.06423).

The chapter's library. Three parts:

1. **The analysis** (paper §3). Training with ``RandomResizedCrop`` (RRC) takes a region
   covering a fraction σ ~ U[σ_min, σ_max] of the image and resizes it to ``K_train``;
   testing resizes the shorter side to ``s_test·K_test`` (s_test = 256/224) and centre
   crops ``K_test``. An object of r pixels therefore appears with size
   ``r·K_train/√(σHW)`` at train time and ``r·s_test·K_test/min(H, W)`` at test time, and

   .. math:: \\frac{\\mathbb E[r_{train}]}{r_{test}}
             = \\mathbb E[\\sigma^{-1/2}]\\,\\frac{K_{train}}{s_{test} K_{test}}
               \\frac{\\min(H, W)}{\\sqrt{HW}},\\qquad
             \\mathbb E[\\sigma^{-1/2}] = \\frac{2(\\sqrt{\\sigma_{max}}-\\sqrt{\\sigma_{min}})}
                                               {\\sigma_{max}-\\sigma_{min}}

   (:func:`expected_inv_sqrt_area`, :func:`apparent_size_ratio`), checked against a
   Monte-Carlo simulation through torchvision's own transforms
   (:func:`monte_carlo_apparent_size`).
2. **Batched, on-device transforms** equivalent to RRC and Resize+CenterCrop
   (:mod:`cvbook.image.crops`: ``sample_rrc_boxes``, ``center_crop_boxes``,
   ``crop_resize``), and data sources with one interface for the synthetic scenes
   (``TensorSource``) and an ImageNet-style folder (``FolderSource``) in
   :mod:`cvbook.data.sources`; all re-exported here.
3. **The experiment**: train at ``K_train`` (:func:`train`), sweep the test
   resolution (:func:`resolution_sweep`), pooled-activation statistics
   (:func:`pooled_statistics`) and the FixRes fine-tuning as the authors ran it
   (:func:`fixres_finetune`): the network in eval mode except the last BatchNorm, whose
   running statistics re-adapt (affine weights frozen), only the classifier trained,
   on images prepared with the *test* transform at ``K_test``.
"""

from __future__ import annotations

from cvbook.data.imagenet import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401
from cvbook.data.sources import (  # noqa: F401
    IMAGE_EXTENSIONS,
    FolderSource,
    TensorSource,
    check_image_folder,
)
from cvbook.fixres.analysis import (  # noqa: F401
    apparent_size_ratio,
    crop_object_coverage,
    expected_inv_sqrt_area,
    matching_test_resolution,
    monte_carlo_apparent_size,
    official_resize_shape,
    rrc_expected_inv_sqrt_area,
)
from cvbook.fixres.finetune import (  # noqa: F401
    Curves,
    classifier,
    difference_in_differences,
    evaluate,
    fixres_finetune,
    last_batchnorm,
    paired_difference,
    pooled_statistics,
    receptive_field,
    resolution_curves,
    resolution_sweep,
    shuffle_seed,
    split_at_last_bn,
    topk_accuracy,
    topk_hits,
    train,
    trunk_features,
)
from cvbook.fixres.presets import (  # noqa: F401
    OFFICIAL_FINETUNE_LR_512,
    PRESETS,
    FixResConfig,
    base_network,
    build_model,
    build_source,
    linear_scaled_lr,
)
from cvbook.image.crops import (  # noqa: F401
    RESIZE_RATIO,
    RRC_RATIO,
    RRC_SCALE,
    center_crop,
    center_crop_boxes,
    crop_resize,
    random_resized_crop,
    resize_size,
    sample_rrc_boxes,
)

#: The paper's test-time resize ratio is :data:`cvbook.image.crops.RESIZE_RATIO`
#: (256/224); ``test_resize_size`` is :func:`cvbook.image.crops.resize_size`.
test_resize_size = resize_size
#: One-release aliases: the batched transforms are RandomResizedCrop + flip and
#: Resize + CenterCrop of :mod:`cvbook.image.crops`.
train_transform = random_resized_crop
test_transform = center_crop
