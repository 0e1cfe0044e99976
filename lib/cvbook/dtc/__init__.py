"""Deep Transfer Clustering (DTC): Han, Vedaldi and Zisserman, "Learning to Discover
Novel Visual Categories via Deep Transfer Clustering", ICCV 2019, arXiv:1908.09884.

The setting: labelled images of some classes (the *known* classes) and unlabelled
images of *other* classes. Goal: cluster the unlabelled images into their classes and
estimate how many there are, using what the known classes teach about "what a
class is".

Pipeline (one function per step):

1. :func:`pretrain` a backbone on the labelled classes (cross-entropy).
2. :func:`pca_kmeans_init`: features of the unlabelled set -> PCA to ``K`` dims ->
   k-means. The PCA projection becomes the network's last linear layer (the
   *bottleneck*) and the k-means centres the learnable prototypes ``mu`` (``K x K``),
   so DTC starts exactly from the k-means solution in the transferred feature space.
   (The released CIFAR/SVHN scripts start the bottleneck randomly while ``mu`` live in
   PCA space; initialising the bottleneck with the PCA map keeps the two consistent.)
3. The DEC objective (:func:`soft_assign` eq. 1, :func:`target_distribution` eq. 2,
   :func:`kl_divergence` eq. 3) trained by :func:`train_dtc`, with the warm-up and
   target-update schedule of the official code (a warm-up before the main epochs, loss
   means over all ``N * K`` elements), and optionally temporal ensembling and
   consistency (:class:`TemporalEnsemble`, :func:`rampup_weight`) in the PI, TE and
   TEP forms.
4. :func:`estimate_num_classes`: constrained k-means (:func:`constrained_kmeans`)
   with *anchor* classes fixed and *probe* classes free, scored by probe accuracy and
   the :func:`silhouette_score` of the free points, then the clusters of the chosen
   run that hold unlabelled points are counted (small ones dropped).

Everything is vectorised torch and follows the device of its inputs.

The package: :mod:`~cvbook.dtc.presets` (settings), :mod:`~cvbook.dtc.objective`
(eqs. 1-3, the network, temporal ensembling), :mod:`~cvbook.dtc.train` (pre-training and
DTC training), :mod:`~cvbook.dtc.estimate_k` (§3.3) and :mod:`~cvbook.dtc.experiment`
(one seed of the chapter's table). Shared pieces live in their homes and are
re-exported here for the notebook: constrained k-means and the silhouette in
:mod:`cvbook.cluster`, the class splits in :mod:`cvbook.data.splits`, the networks in
:mod:`cvbook.nn`, the augmentation in :mod:`cvbook.image.augment`.
"""

from cvbook.cluster import _kmeanspp, constrained_kmeans, silhouette_score  # noqa: F401
from cvbook.data.splits import (
    NovelSplit,
    dataset_to_tensors,
    load_digits_split,
    split_novel,
)
from cvbook.dtc.estimate_k import KEstimate, estimate_k_for_split, estimate_num_classes
from cvbook.dtc.experiment import (
    CIFAR_STATS,
    estimate_k_controls,
    kmeans_baseline,
    linear_probe_ceiling,
    load_letters_k_world,
    load_split,
    read_cifar_train,
    run_seed,
    summarise,
)
from cvbook.dtc.objective import (
    DTCNet,
    KMeansInit,
    TemporalEnsemble,
    kl_divergence,
    pca_kmeans_init,
    rampup_weight,
    soft_assign,
    target_distribution,
)
from cvbook.dtc.presets import MODES, PRESETS, DTCConfig, Mode
from cvbook.dtc.train import (
    VGG6,
    DTCHistory,
    PooledCNN,
    augment,
    extract_features,
    make_backbone,
    predict,
    pretrain,
    train_dtc,
)
from cvbook.nn.classifiers import Classifier

__all__ = [
    "CIFAR_STATS", "MODES", "PRESETS", "Classifier", "DTCConfig", "DTCHistory", "DTCNet",
    "KEstimate", "KMeansInit", "Mode", "NovelSplit", "TemporalEnsemble", "augment",
    "constrained_kmeans",
    "dataset_to_tensors", "estimate_k_for_split", "estimate_num_classes",
    "estimate_k_controls", "extract_features", "kl_divergence", "kmeans_baseline",
    "load_letters_k_world", "linear_probe_ceiling", "VGG6", "load_digits_split",
    "load_split", "make_backbone", "PooledCNN", "read_cifar_train", "pca_kmeans_init",
    "predict", "pretrain",
    "rampup_weight", "run_seed", "silhouette_score", "soft_assign", "split_novel",
    "summarise", "target_distribution", "train_dtc",
]
