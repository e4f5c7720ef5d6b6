"""`embedder.create` and the trained `Embedder`: embed, verify, identify, save, load, export."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from effnet import distributed
from effnet.checkpoint import atomic_path, invalid_config, read_json, write_json
from effnet.data import ImageDataset
from effnet.embedder.embedding import embed_paths
from effnet.embedder.hparams import EmbedderHParams
from effnet.embedder.losses import make_loss
from effnet.embedder.metrics import identification, pair_scores, plot_roc, verification_metrics
from effnet.embedder.pairs import Pairs, read_csv_pairs, read_lfw_pairs, sample_pairs
from effnet.embedder.training import train_embedder
from effnet.factory import create_embedder
from effnet.models.embedding import BN_EPS, EmbeddingNet
from effnet.run_lock import run_lock
from effnet.training.control import sigterm_as_interrupt
from effnet.training.options import RunOptions
from effnet.training.run_folder import CONFIG_FILE, HISTORY_FILE, WEIGHTS_FILE
from effnet.weights.load import load_run_weights

if TYPE_CHECKING:
    from effnet.export.quantization import QuantizationConfig

log = logging.getLogger(__name__)
FORMAT = "effnet.embedder/1"


class Embedder:
    """A trained embedding model: ``network`` maps (N, 3, H, W) images to (N, embedding_dim) embeddings."""

    def __init__(
        self,
        network: EmbeddingNet,
        hparams: EmbedderHParams | None = None,
        history: list[dict] | None = None,
        best_epoch: int | None = None,
        train_identities: list[str] | None = None,
    ) -> None:
        self.network = network.eval()
        self.hparams = hparams or EmbedderHParams()
        self.history = history or []
        self.best_epoch = best_epoch
        self.train_identities = list(train_identities or [])
        self.train_data: ImageDataset | None = None  # set by create(): calibration images for int8 export

    @property
    def preprocessing(self):
        return self.network.preprocessing

    @property
    def embedding_dim(self) -> int:
        return self.network.embedding_dim

    def __repr__(self) -> str:
        return f"Embedder({self.network.name}, loss={self.hparams.loss}, best epoch {self.best_epoch})"

    def embed(self, images: ImageDataset | list, flip: bool = True, batch_size: int = 64) -> np.ndarray:
        """L2-normalised embeddings (N, embedding_dim) of a dataset or a list of image paths."""
        return embed_paths(self, images, flip, batch_size, self.hparams.num_workers)

    def evaluate_verification(self, pairs_or_data: Any, **kwargs) -> dict:
        """See `evaluate_verification`."""
        return evaluate_verification(self, pairs_or_data, **kwargs)

    def identify(self, data: ImageDataset, gallery_per_identity: int = 1, seed: int = 0) -> dict:
        """Open-set identification on held-out identities: top-1 / top-5 of probes against a gallery of
        ``gallery_per_identity`` images per identity."""
        return identification(self.embed(data), data.labels, gallery_per_identity, seed)

    # saving -------------------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Weights (safetensors), config.json (how to rebuild the network) and history.json."""
        from safetensors.torch import save_file

        from effnet.models.spec import config_to_dict

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        backbone = self.network.backbone
        backbone_config = getattr(backbone, "config", None)
        config = {
            "format": FORMAT,
            "backbone": backbone.name,
            "backbone_config": config_to_dict(backbone_config) if hasattr(backbone_config, "arch") else None,
            "padding": getattr(backbone, "padding", "symmetric"),
            "bn_eps": _bn_eps(backbone),
            "head_bn_eps": _bn_eps(self.network.head, None),
            "head": self.network.head_name,
            "embedding_dim": self.embedding_dim,
            "preprocessing": self.preprocessing.to_dict(),
            "hparams": self.hparams.to_dict(),
            "best_epoch": self.best_epoch,
            "train_identities": self.train_identities,
        }
        state = {k: v.detach().contiguous() for k, v in self.network.state_dict().items()}
        with atomic_path(directory / WEIGHTS_FILE) as tmp:
            save_file(state, tmp)
        write_json(directory / CONFIG_FILE, config)
        write_json(directory / HISTORY_FILE, {"best_epoch": self.best_epoch, "epochs": self.history})
        return directory

    def export(
        self,
        export_dir: str | os.PathLike,
        export_format: str | list[str] = "onnx",
        quantization: QuantizationConfig | str | None = None,
        representative_data: Any = None,
        validation_data: ImageDataset | None = None,
        filename: str = "model",
        target: str = "rk3588",
        rknn_algorithm: str = "normal",
    ) -> dict:
        """Write ``model.onnx``, ``model.tflite`` and/or ``model.rknn`` (``export_format``; ``target``: the
        Rockchip NPU of a .rknn file, ``rknn_algorithm`` its calibration algorithm), float or quantized
        (``quantization``: None, "int8", "int16", "fp16", "dynamic" or a `QuantizationConfig`, e.g. with
        ``finetune_steps`` for quantization-aware fine-tuning); int8 / int16 calibrate on
        ``representative_data`` (default: the training images) and, asked for by name, round the weights by
        GPTQ. See `export_embedder` for what is measured and returned."""
        from effnet.embedder.exporting import export_embedder

        data = representative_data if representative_data is not None else self.train_data
        return export_embedder(
            self.network,
            export_dir,
            export_format,
            quantization,
            data,
            validation_data,
            filename,
            target,
            rknn_algorithm,
        )


def _bn_eps(network: torch.nn.Module, default: float | None = 1e-3) -> float | None:
    return next((m.eps for m in network.modules() if isinstance(m, torch.nn.BatchNorm2d)), default)


def load(directory: str | os.PathLike, arch: str | None = None) -> Embedder:
    """Load an embedder written by `Embedder.save` (or `effnet embed-train`), or, given a ``.pth`` / ``.pt``
    file, an insightface arcface_torch IResNet checkpoint (`load_insightface`; ``arch`` checks its depth)."""
    from effnet.embedder.insightface import is_weights_file, load_insightface
    from effnet.factory import create_model
    from effnet.models.spec import config_from_dict
    from effnet.preprocessing import Preprocessing

    directory = Path(directory)
    if is_weights_file(directory) and not directory.is_dir():
        return load_insightface(directory, arch)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{directory}: not a saved effnet embedder ({CONFIG_FILE} is missing)")
    config = read_json(config_path)
    if config.get("format") != FORMAT:
        raise ValueError(
            f"{directory}: {CONFIG_FILE} is not an effnet embedder (format {config.get('format')!r})"
        )
    try:
        known = {f.name for f in fields(EmbedderHParams)}
        hparams = EmbedderHParams(**{k: v for k, v in config["hparams"].items() if k in known})
        preprocessing = Preprocessing.from_dict(config["preprocessing"])
        backbone_config = config["backbone_config"]
        target = config_from_dict(backbone_config) if backbone_config else config["backbone"]
        extra = {} if backbone_config is None else {"padding": config["padding"], "bn_eps": config["bn_eps"]}
        backbone = create_model(target, num_classes=0, input_size=preprocessing.input_size, **extra)
        backbone.preprocessing = preprocessing
        network = create_embedder(
            backbone,
            config["head"],
            config["embedding_dim"],
            preprocessing.input_size,
            dropout=hparams.dropout,
            reduce_channels=hparams.reduce_channels,
            # embedders saved before the head eps was recorded were all trained with arcface_torch's 1e-5
            head_bn_eps=config.get("head_bn_eps") or BN_EPS,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise invalid_config(config_path, error) from None
    load_run_weights(network, directory / WEIGHTS_FILE, config_path)
    history_path = directory / HISTORY_FILE
    history = read_json(history_path).get("epochs", []) if history_path.is_file() else []
    return Embedder(network, hparams, history, config.get("best_epoch"), config.get("train_identities"))


def _fingerprint(train: ImageDataset, validation: ImageDataset | None, hp: EmbedderHParams) -> dict:
    return {
        "labels": list(train.index_to_label),
        # sha256, not hash(): str hashes are salted per process, and a resume usually runs in a new one
        "train": [
            len(train),
            hashlib.sha256("\n".join(train.paths).encode("utf-8", "surrogateescape")).hexdigest()[:16],
        ],
        "validation": len(validation) if validation is not None else 0,
        "hparams": {
            k: v
            for k, v in hp.to_dict().items()
            if k not in ("num_workers", "sync_bn") and not (k == "drop_path_rate" and v is None)
        },
    }


def create(
    train_data: ImageDataset,
    backbone: str = "efficientnet_lite0",
    head: str = "gdc",
    loss: str = "arcface",
    embedding_dim: int = 512,
    input_size: int = 112,
    epochs: int = 10,
    validation_data: ImageDataset | None = None,
    model_dir: str | os.PathLike | None = None,
    seed: int = 0,
    run_options: RunOptions | None = None,
    **kwargs: Any,
) -> Embedder:
    """Train an embedding model on ``train_data`` (one sub-folder per identity, as the classifier's
    DataLoader) with a margin loss: ``loss`` is "arcface" (s=64, m=0.5), "cosface" (s=64, m=0.4),
    "combined" (``margins=(m1, m2, m3)``) or "softmax".

    ``validation_data``: images of other identities than training (open set); the epoch with the best
    verification accuracy on pairs sampled from it is kept. ``model_dir``: checkpoints
    (``model_dir/checkpoints``) after every epoch, and every ``run_options.checkpoint_every`` steps;
    calling `create` again with the same settings resumes from the last one, mid-epoch too (Ctrl-C and
    SIGTERM write one), and the trained model is saved there. ``run_options``: a
    `effnet.training.RunOptions` (``precision`` "bf16"/"fp16", ``accumulate``,
    ``checkpoint_every``, ``keep_checkpoints``, ``device``), as for the classifier. Under torchrun every
    rank calls this (DDP; see `effnet.embedder.training`); ``batch_size`` is then the global batch. Other
    keyword arguments set `EmbedderHParams` fields (``learning_rate``, ``batch_size``, ``pretrained``,
    ``scale``, ``margins``, ``reduce_channels``, ``freeze_bn``, ``sync_bn`` ...).

    Few identities (tens, not thousands): without gradient clipping, s=64 collapsed every embedding onto
    one point on 7 identities, margin or not; ``clip_grad_norm`` (default 5, as arcface_torch) prevents
    that. ``margin_warmup_epochs=N`` ramps the margins linearly from 0 (the normalised softmax) to their
    value over the first N epochs (better verification on 7 identities, README); ``easy_margin=True``
    applies the margin only where cos(theta) > 0 (insightface's option). ``flip`` (default on) and
    ``crop_scale`` (e.g. 0.8: random crops of 80-100 % of the area; default off) augment the training
    images, seeded per sample.
    """
    if not isinstance(train_data, ImageDataset):
        raise TypeError(
            f"train_data must be an effnet DataLoader (ImageDataset), got {type(train_data).__name__}; load "
            "it with DataLoader.from_folder(path): one sub-folder per identity"
        )
    known = {f.name for f in fields(EmbedderHParams)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise TypeError(f"create() got unknown arguments {unknown}; see effnet.embedder.EmbedderHParams")
    hp = EmbedderHParams(
        backbone=backbone,
        head=head,
        loss=loss,
        embedding_dim=embedding_dim,
        input_size=input_size,
        epochs=epochs,
        seed=seed,
        **kwargs,
    )
    hp.validate()
    if train_data.num_classes < 2:
        raise ValueError(f"train_data has {train_data.num_classes} identity; a margin loss needs at least 2")
    torch.manual_seed(hp.seed)
    network = _network(hp)
    pretrained = getattr(network.backbone, "weights_report", None) is not None
    loss_module = make_loss(
        hp.loss, hp.embedding_dim, train_data.num_classes, hp.scale, hp.margins, hp.easy_margin
    )
    model_dir = Path(model_dir) if model_dir is not None else None
    with run_lock(model_dir if distributed.is_main_process() else None), sigterm_as_interrupt():
        history = train_embedder(
            network,
            loss_module,
            train_data,
            validation_data,
            hp,
            model_dir,
            _fingerprint(train_data, validation_data, hp),
            pretrained,
            run_options,
        )
        embedder = Embedder(network, hp, history.epochs, history.best_epoch, train_data.index_to_label)
        embedder.train_data = train_data
        if model_dir is not None and distributed.is_main_process():  # under torchrun: rank 0 writes
            embedder.save(model_dir)
    return embedder


def _network(hp: EmbedderHParams) -> EmbeddingNet:
    """The embedding network of ``hp``: its backbone pretrained unless ``hp.pretrained`` is False. Weights
    that cannot be had are a `PretrainedWeightsError` naming them: never a silent random start."""
    build = lambda pretrained: create_embedder(  # noqa: E731
        hp.backbone,
        hp.head,
        hp.embedding_dim,
        hp.input_size,
        hp.dropout,
        hp.reduce_channels,
        pretrained=pretrained,
        **({} if hp.drop_path_rate is None else {"drop_path_rate": hp.drop_path_rate}),
    )
    if not hp.pretrained:
        return build(False)
    from effnet.models import get_config
    from effnet.weights.missing import PretrainedWeightsError, missing_weights_message

    model = get_config(hp.backbone).name  # an unknown name is its own error, not a weights one
    try:
        return build(True)
    except (FileNotFoundError, ValueError) as error:
        message = missing_weights_message(
            hp.backbone,
            model,
            error,
            "training would start the backbone from random initialization",
            "embedder.create(..., pretrained=False) or effnet embed-train --from-scratch",
        )
        raise PretrainedWeightsError(message) from None


def as_pairs(
    pairs_or_data: Any,
    images_root: str | os.PathLike | None = None,
    num_pairs: int | None = None,
    seed: int = 0,
) -> Pairs:
    """`Pairs` from a dataset of held-out identities (sampled, balanced, seeded), an LFW ``pairs.txt``,
    a ``.csv`` (path1,path2,same), a list of (path1, path2, same) tuples, or `Pairs`."""
    if isinstance(pairs_or_data, Pairs):
        return pairs_or_data
    if isinstance(pairs_or_data, ImageDataset):
        return sample_pairs(pairs_or_data, num_pairs, seed)
    if isinstance(pairs_or_data, (str, os.PathLike)):
        path = Path(pairs_or_data)
        if path.is_dir():
            return sample_pairs(ImageDataset.from_folder(path, shuffle=False), num_pairs, seed)
        if path.suffix.lower() == ".csv":
            return read_csv_pairs(path, images_root)
        return read_lfw_pairs(path, images_root)
    if isinstance(pairs_or_data, (list, tuple)) and pairs_or_data and len(pairs_or_data[0]) == 3:
        return Pairs.from_path_pairs([(str(a), str(b), bool(s)) for a, b, s in pairs_or_data])
    raise TypeError(
        "pairs_or_data must be a DataLoader of held-out identities, an identity folder, a pairs.txt or .csv "
        f"path, or a list of (path1, path2, same); got {type(pairs_or_data).__name__}"
    )


def evaluate_verification(
    model: Any,
    pairs_or_data: Any,
    images_root: str | os.PathLike | None = None,
    num_pairs: int | None = None,
    seed: int = 0,
    flip: bool = True,
    folds: int = 10,
    roc_path: str | os.PathLike | None = None,
    batch_size: int = 64,
    num_workers: int | None = None,
) -> dict:
    """Face-verification metrics of ``model`` (an `Embedder`, an embedding network, a runtime `Predictor` or
    an exported .onnx/.tflite path) on pairs (see `as_pairs`).

    Returns ``accuracy`` / ``accuracy_std`` / ``threshold`` (10-fold, the threshold of each fold chosen on
    the other nine; cosine similarity), ``tar@far=1e-3``, ``tar@far=1e-4``, ``auc``, ``eer`` and the pair
    counts. ``flip``: embeddings of each image and its mirror image are summed (insightface's flip test).
    ``roc_path``: also write the ROC curve there (PNG).
    """
    pairs = as_pairs(pairs_or_data, images_root, num_pairs, seed)
    embeddings = embed_paths(model, pairs.paths, flip, batch_size, num_workers)
    scores = pair_scores(embeddings, pairs.pairs)
    result = verification_metrics(scores, pairs.same, folds)
    if roc_path is not None:
        name = getattr(getattr(model, "network", model), "name", str(model))
        result["roc_plot"] = str(plot_roc({str(name): (scores, pairs.same)}, roc_path))
    return result


__all__ = ["Embedder", "as_pairs", "create", "evaluate_verification", "load"]
