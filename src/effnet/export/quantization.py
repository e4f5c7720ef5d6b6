"""`QuantizationConfig`: how an exported file is quantized, after TFLite Model Maker's class of that name."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_QUANTIZATION_STEPS = 500  # Model Maker's default: 500 calibration images, batch 1
MODES = ("int8", "int16", "fp16", "dynamic")
CALIBRATED_MODES = ("int8", "int16")  # static quantization: activation ranges from representative images
WEIGHT_ROUNDINGS = ("auto", "nearest", "gptq")
# How an int8 .onnx file stores the weights of the layers that x86 kernels multiply in pairs (every layer but
# depthwise convolutions): "portable" in 7 bits (-63..63), exact on every CPU; "vnni" in 8 bits (-127..127),
# exact only where ONNX Runtime has int8 dot-product instructions (x86 VNNI, ARM): on other x86 CPUs its
# uint8 x int8 kernels saturate (effnet's runtime then switches them to slower exact ones). docs/int8.md.
INT8_FORMATS = ("portable", "vnni")
INFERENCE_TYPES = ("float32", "int8", "uint8")
_MODE_ALIASES = {"int8": "int8", "fp16": "fp16", "float16": "fp16", "dynamic": "dynamic"}
_MODE_ALIASES |= {"int16": "int16", "int16x8": "int16", "16x8": "int16", "a16w8": "int16"}
_NO_QUANTIZATION = ("none", "float32", "float", "fp32")
# The smallest range a calibrated activation gets (the .tflite calibration and the QAT simulation): a dead,
# all-zero tensor (a ReLU6 no calibration image reached) keeps a usable scale, and 6 / (1e-3 / 32767) still
# fits int32, which LiteRT requires of a fused ReLU6's bound.
MIN_ACTIVATION_RANGE = 1e-3


@dataclass(frozen=True)
class QuantizationConfig:
    """How to quantize an exported model.

    - ``mode="int8"``: full-integer post-training quantization: int8 weights (per channel) and int8
      activations whose ranges come from running ``representative_data`` through the float model
      (``quantization_steps`` images). The fastest and smallest file.
    - ``mode="int16"``: int16 activations with int8 weights (A16W8; TFLite's "16x8" mode): calibrated like
      int8, the same file size, 256x finer activations. For NPUs that run it natively (Qualcomm HTP through
      ONNX Runtime's QNN provider, Arm Ethos-U): on a CPU it is slower than float (reference kernels), so
      use it where int8 loses too much and the target has int16 kernels. Float32 input and output.
    - ``mode="fp16"``: float16 weights, float compute; half the size, almost no accuracy change.
    - ``mode="dynamic"``: int8 weights, activations quantized on the fly at run time.

    ``representative_data``: preprocessed float32 (N, C, H, W) arrays (or an iterable of such batches, or of
    ``(images, labels)`` pairs), an `effnet.data.ImageDataset`, or a list of image paths; images are then
    preprocessed with the model's own eval transform. Images beyond ``quantization_steps`` are held out to
    check the quantized file.

    ``inference_input_type`` / ``inference_output_type`` ("float32", "int8" or "uint8") set the tensor types
    of a .tflite file's input and output (int8 mode only). With "uint8" input the file takes
    ``round(x / scale) + zero_point`` of the normalized image; the runtime applies it. ONNX int8 files keep
    float32 input and output (QDQ format) whatever these say.

    ``bias_correction`` (int8 and int16 modes): after quantizing, correct each layer's integer bias in order
    so that its mean output on the calibration images matches the float model's (see
    `effnet.export.bias_correction`; on a transfer-learned Lite0 it lifted top-1 agreement with float from
    97.3% to 99.9%). It costs one pass over up to 128 calibration images per layer; pass False to skip it.

    ``finetune_steps`` (int8 and int16 modes): quantization-aware fine-tuning of a copy of the model on the
    calibration images before quantizing (`effnet.export.qat`; a few minutes; bias correction is then
    skipped). ``weight_rounding`` (int8 and int16 modes): ``"nearest"`` rounds each weight to its nearest
    int8 level; ``"gptq"`` chooses the levels layer by layer so that each layer's output on the calibration
    images stays close to float (`effnet.export.rounding`; one pass, no training); ``"auto"`` (the default):
    GPTQ where a file keeps weights in 7 bits (a portable int8 .onnx file), nearest elsewhere. GPTQ and
    fine-tuning are alternatives.

    ``int8_format`` (int8 .onnx files; see `INT8_FORMATS`): ``"portable"`` (the default) gives a file whose
    integer arithmetic is exact on every CPU; ``"vnni"`` keeps 8-bit weights in every layer, for files that
    only run on CPUs with int8 dot-product instructions. .tflite files are exact on every CPU either way.
    """

    mode: str = "int8"
    representative_data: Any = field(default=None, repr=False, compare=False)
    quantization_steps: int = DEFAULT_QUANTIZATION_STEPS
    inference_input_type: str = "float32"
    inference_output_type: str = "float32"
    bias_correction: bool = True
    finetune_steps: int = 0
    weight_rounding: str = "auto"
    int8_format: str = "portable"

    def __post_init__(self) -> None:
        mode = _MODE_ALIASES.get(str(self.mode).lower())
        if mode is None:
            raise ValueError(
                f"quantization mode must be one of {MODES} (or 'float16'), got {self.mode!r}; "
                "for no quantization pass None"
            )
        object.__setattr__(self, "mode", mode)
        for name in ("inference_input_type", "inference_output_type"):
            object.__setattr__(self, name, _type_name(name, getattr(self, name)))
        steps = self.quantization_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"quantization_steps must be a positive integer, got {steps!r}")
        finetune = self.finetune_steps
        if isinstance(finetune, bool) or not isinstance(finetune, int) or finetune < 0:
            raise ValueError(f"finetune_steps must be a non-negative integer, got {finetune!r}")
        if finetune and mode not in CALIBRATED_MODES:
            raise ValueError(
                f"finetune_steps applies to {' and '.join(CALIBRATED_MODES)} quantization, not {mode}"
            )
        if self.weight_rounding not in WEIGHT_ROUNDINGS:
            raise ValueError(
                f"weight_rounding must be one of {WEIGHT_ROUNDINGS}, got {self.weight_rounding!r}"
            )
        if self.weight_rounding == "gptq":
            if mode not in CALIBRATED_MODES:
                raise ValueError(
                    f"weight_rounding={self.weight_rounding!r} needs calibration images: "
                    f"{' or '.join(CALIBRATED_MODES)} quantization, not {mode}"
                )
            if finetune:
                raise ValueError(
                    "weight_rounding='gptq' and finetune_steps are alternatives (fine-tuning moves the "
                    "weights GPTQ rounded; measured, it did not keep more): pass one of them"
                )
        if self.int8_format not in INT8_FORMATS:
            raise ValueError(f"int8_format must be one of {INT8_FORMATS}, got {self.int8_format!r}")
        if mode != "int8" and (self.inference_input_type, self.inference_output_type) != ("float32",) * 2:
            raise ValueError(
                f"{mode} quantization keeps float32 input and output; integer inference types need "
                "QuantizationConfig.for_int8(...)"
            )

    @classmethod
    def for_int8(
        cls,
        representative_data: Any,
        quantization_steps: int = DEFAULT_QUANTIZATION_STEPS,
        inference_input_type: Any = "uint8",
        inference_output_type: Any = "uint8",
        bias_correction: bool = True,
        finetune_steps: int = 0,
        weight_rounding: str = "auto",
        int8_format: str = "portable",
    ) -> QuantizationConfig:
        """Full-integer int8, uint8 input and output by default (as Model Maker)."""
        return cls(
            "int8",
            representative_data,
            quantization_steps,
            inference_input_type,
            inference_output_type,
            bias_correction,
            finetune_steps,
            weight_rounding,
            int8_format,
        )

    @classmethod
    def for_int16(
        cls,
        representative_data: Any,
        quantization_steps: int = DEFAULT_QUANTIZATION_STEPS,
        bias_correction: bool = True,
        finetune_steps: int = 0,
        weight_rounding: str = "auto",
    ) -> QuantizationConfig:
        """int16 activations, int8 weights (A16W8), float32 input and output."""
        return cls(
            "int16",
            representative_data,
            quantization_steps,
            bias_correction=bias_correction,
            finetune_steps=finetune_steps,
            weight_rounding=weight_rounding,
        )

    @property
    def calibrated(self) -> bool:
        """Whether activation ranges come from representative images (int8, int16)."""
        return self.mode in CALIBRATED_MODES

    @property
    def portable_onnx(self) -> bool:
        """Whether an int8 .onnx file keeps the paired layers' weights in 7 bits (``int8_format``)."""
        return self.mode == "int8" and self.int8_format == "portable"

    def rounding_for(self, portable: bool) -> str:
        """ "nearest" or "gptq": the weight rounding of a file, ``portable`` if it is a portable int8 .onnx
        file (``weight_rounding="auto"`` resolved)."""
        if self.weight_rounding != "auto":
            return self.weight_rounding
        return "gptq" if portable and self.calibrated and not self.finetune_steps else "nearest"

    @property
    def corrects_biases(self) -> bool:
        """Whether the export applies bias correction (calibrated modes, not after fine-tuning)."""
        return self.calibrated and self.bias_correction and not self.finetune_steps

    @classmethod
    def for_float16(cls) -> QuantizationConfig:
        return cls("fp16")

    @classmethod
    def for_dynamic(cls) -> QuantizationConfig:
        return cls("dynamic")

    @classmethod
    def from_name(cls, name: str | None, representative_data: Any = None) -> QuantizationConfig | None:
        """``"int8"``, ``"int16"``, ``"fp16"`` / ``"float16"``, ``"dynamic"``, or ``"none"`` / None (no
        quantization): the command line's ``--quantize`` values. int8 keeps float32 input and output here;
        use `for_int8` for integer ones."""
        if name is None or str(name).lower() in _NO_QUANTIZATION:
            return None
        return cls(str(name), representative_data)


def resolve_quantization(
    quantization: QuantizationConfig | str | None, representative_data: Any
) -> QuantizationConfig | None:
    """A `QuantizationConfig` (or None) from what an export function was given; ``representative_data``
    passed to the function fills in a config that has none."""
    if quantization is None or isinstance(quantization, str):
        return QuantizationConfig.from_name(quantization, representative_data)
    if not isinstance(quantization, QuantizationConfig):
        raise TypeError(
            f"quantization must be None, 'int8', 'int16', 'fp16', 'dynamic' or a QuantizationConfig, got "
            f"{type(quantization).__name__}"
        )
    if representative_data is not None and quantization.representative_data is None:
        return replace(quantization, representative_data=representative_data)
    return quantization


def _type_name(argument: str, value: Any) -> str:
    """'uint8' from 'uint8', numpy.uint8, numpy.dtype('uint8') or torch.uint8."""
    name = str(getattr(value, "__name__", value)).lower().removeprefix("torch.").removeprefix("tf.")
    name = {"float": "float32", "float32": "float32"}.get(name, name)
    if name not in INFERENCE_TYPES:
        raise ValueError(f"{argument} must be one of {INFERENCE_TYPES}, got {value!r}")
    return name
