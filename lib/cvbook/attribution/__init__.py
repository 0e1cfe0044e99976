"""Attribution: why did the network say that?

A TorchRay-shaped toolkit over one shared core (:func:`saliency`): probe any layer by
name, explain a class index or any reward callable, whole batches at once, and the model
is always left exactly as it was found (:func:`preserve_model`).

Methods (core: gradients; :mod:`~cvbook.attribution.perturbation`: RISE and SmoothGrad):
:func:`gradient`, :func:`deconvnet`, :func:`guided_backprop`, :func:`grad_cam`,
:func:`linear_approx`, :func:`excitation_backprop`,
:func:`contrastive_excitation_backprop`, :func:`rise`, :func:`smoothgrad`,
:func:`extremal_perturbation` and :func:`channel_extremal_perturbation` (chapter 01),
:func:`normgrad`, :func:`layer_saliencies`, :func:`combine_maps`, :func:`meta_saliency`,
:func:`adversarial_locations` (chapter 02). The pointing game is in
:mod:`cvbook.metrics.pointing`; the chapters' presets in :mod:`cvbook.attribution.presets`.
"""

from cvbook.attribution.core import (
    AGGREGATIONS,
    contrastive_excitation_backprop,
    deconvnet,
    excitation_backprop,
    get_module,
    grad_cam,
    gradient,
    guided_backprop,
    linear_approx,
    model_state,
    preserve_model,
    probe,
    resize_map,
    reward,
    saliency,
)
from cvbook.attribution.extremal import (
    ChannelResult,
    ExtremalResult,
    SmoothMask,
    blur_pyramid,
    channel_extremal_perturbation,
    extremal_perturbation,
    gaussian_blur,
    invert_features,
    smooth_max_brute_force,
)
from cvbook.attribution.normgrad import (
    adversarial_locations,
    class_sensitivity,
    combine_maps,
    conv_contribution_norms,
    layer_saliencies,
    meta_saliency,
    normgrad,
    spearman,
)
from cvbook.attribution.perturbation import rise, rise_masks, smoothgrad
from cvbook.attribution.presets import (
    EXTREMAL_PRESETS,
    NORMGRAD_PRESETS,
    ExtremalConfig,
    NormGradConfig,
)

__all__ = [
    "AGGREGATIONS", "EXTREMAL_PRESETS", "ExtremalConfig", "NORMGRAD_PRESETS", "NormGradConfig",
    "ChannelResult", "ExtremalResult", "SmoothMask", "smooth_max_brute_force",
    "adversarial_locations",
    "blur_pyramid", "channel_extremal_perturbation", "class_sensitivity", "combine_maps",
    "contrastive_excitation_backprop", "conv_contribution_norms", "deconvnet",
    "excitation_backprop", "extremal_perturbation", "gaussian_blur", "get_module",
    "grad_cam", "gradient", "guided_backprop", "invert_features", "layer_saliencies",
    "linear_approx", "meta_saliency", "model_state", "normgrad", "preserve_model", "probe",
    "resize_map", "reward", "rise", "rise_masks", "saliency", "smoothgrad", "spearman",
]
