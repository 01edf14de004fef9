"""The closed sets of values the config uses, as string enums (the values users write)."""

from __future__ import annotations

from enum import Enum


class Choice(str, Enum):
    """A string enum whose values can be listed (for messages and membership tests)."""

    @classmethod
    def values(cls) -> list[str]:
        return [member.value for member in cls]


class TargetName(Choice):
    intel = "intel"
    nvidia = "nvidia"


class Engine(Choice):
    auto = "auto"  # build the device step when the device is here, else fail saying what is missing
    build = "build"  # must build
    kit = "kit"  # stop before the steps that need the target's device


class PrecisionName(Choice):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"
    int8 = "int8"
    fp8 = "fp8"  # target=nvidia only: FP8 E4M3 Q/DQ for TensorRT
    int4 = "int4"  # target=nvidia only: INT4 weight-only (blocked DQ on MatMul/Gemm weights) for TensorRT

    @property
    def quantized(self) -> bool:
        """Precisions NVIDIA's (or NNCF's) quantizer makes: Q/DQ in the graph."""
        return self in (PrecisionName.int8, PrecisionName.fp8, PrecisionName.int4)

    @property
    def nvidia_only(self) -> bool:
        """Types only TensorRT takes here: OpenVINO's int8 path has no FP8 and no INT4 weight-only build."""
        return self in (PrecisionName.fp8, PrecisionName.int4)


class InferencePrecision(Choice):
    f32 = "f32"
    f16 = "f16"
    bf16 = "bf16"


# Each build precision may run at its own precision or a more precise one, never a less precise
# one: fp32 promises f32 compute; int8's non-quantized ops may run f32, bf16 or f16.
ALLOWED_INFERENCE_PRECISIONS: dict[PrecisionName, tuple[InferencePrecision, ...]] = {
    PrecisionName.fp32: (InferencePrecision.f32,),
    PrecisionName.fp16: (InferencePrecision.f16, InferencePrecision.f32),
    PrecisionName.bf16: (InferencePrecision.bf16, InferencePrecision.f32),
    PrecisionName.int8: (InferencePrecision.f32, InferencePrecision.bf16, InferencePrecision.f16),
    PrecisionName.fp8: (InferencePrecision.f32, InferencePrecision.bf16, InferencePrecision.f16),
    PrecisionName.int4: (InferencePrecision.f32, InferencePrecision.bf16, InferencePrecision.f16),
}


class SourceKind(Choice):
    torchvision = "torchvision"
    efficientnet_lite0 = "efficientnet_lite0"
    onnx = "onnx"
    huggingface = "huggingface"  # a local transformers model folder (config.json, safetensors, tokenizer)


class DatasetKind(Choice):
    sample_photos = "sample_photos"
    image_folder = "image_folder"
    npz = "npz"
    fashion_mnist = "fashion_mnist"  # labeled; the Debian package dataset-fashion-mnist
    text = "text"  # lines of text, tokenized with the model's own tokenizer
    synthetic = "synthetic"  # seeded arrays of the inputs' dtypes and shapes: no real data


UNLABELED_KINDS = (DatasetKind.sample_photos, DatasetKind.npz, DatasetKind.text, DatasetKind.synthetic)
IMAGE_KINDS = (DatasetKind.sample_photos, DatasetKind.image_folder, DatasetKind.fashion_mnist)


class Targets(Choice):
    """What a labeled dataset's labels are."""

    classes = "classes"  # a class per sample (top-1 / top-5)
    masks = "masks"  # a mask per sample (mIoU): fashion_mnist's garment silhouettes


class TensorType(Choice):
    """A model input's element type (ONNX names)."""

    float32 = "float32"
    float16 = "float16"
    int64 = "int64"
    int32 = "int32"
    int8 = "int8"
    uint8 = "uint8"
    bool = "bool"


class Task(Choice):
    """What the model's outputs are: it picks the default validation metrics."""

    classification = "classification"  # scores over classes: top-1 agreement, cosine
    dense = "dense"  # a map per pixel or cell (detection, segmentation): cosine, relative L2
    embedding = "embedding"  # a vector per sample: cosine, nearest-neighbour agreement
    sequence = "sequence"  # scores per position [N, T, classes]: per-position argmax agreement
    generic = "generic"  # anything: cosine, relative L2


class ModelType(Choice):
    transformer = "transformer"


class Pooling(Choice):
    """A transformer's output head (huggingface sources)."""

    none = "none"  # the last hidden state [batch, seq, hidden]
    mean = "mean"  # the mean over the unmasked tokens [batch, hidden] (sentence embeddings)
    cls = "cls"  # the first token's state [batch, hidden]


class Fit(Choice):
    """How an image becomes the input's H×W when their shapes differ."""

    crop = "crop"  # resize (shorter side to `resize`), then center-crop; non-square: cover, then crop
    stretch = "stretch"  # resize to exactly H×W
    pad = "pad"  # resize to fit inside H×W keeping the ratio, pad the rest with the mean
FASHION_MNIST_SPLITS = ("test", "train")


class AccuracyMetric(Choice):
    auto = "auto"  # top1 when the validation set has labels, else agreement
    top1 = "top1"  # top-1 accuracy against the labels
    agreement = "agreement"  # top-1 agreement with the FP32 reference


class Objective(Choice):
    latency = "latency"  # lowest batch-1 median latency
    throughput = "throughput"  # most inferences per second (async, all streams busy)


class PerformanceHint(Choice):
    LATENCY = "LATENCY"
    THROUGHPUT = "THROUGHPUT"


class HardwareCompatibility(Choice):
    none = "none"  # only the GPU architecture it was built on
    ampere_plus = "ampere_plus"  # Ampere and newer GPUs
    same_compute_capability = "same_compute_capability"


class Int8Calibration(Choice):
    """How NVIDIA's quantizer turns calibration statistics into INT8 ranges."""

    max = "max"  # the largest |value| seen (EfficientNet-Lite0 and MiniLM measured best)
    entropy = "entropy"  # the KL-divergence optimal clip (TensorRT's classic calibrator)


class Int4Method(Choice):
    """How NVIDIA's quantizer picks INT4 weights (modelopt's int4 calibration methods). Measured on
    all-MiniLM-L6-v2 (block 128, 32 calibration sentences, CPU): embedding cosine vs FP32 0.933 for
    rtn_dq (5 s), 0.950 for awq_clip (34 s), 0.950 for awq_lite (23 s)."""

    awq_lite = "awq_lite"  # activation-aware scales searched on the calibration set (float Mul before each MatMul)
    awq_clip = "awq_clip"  # activation-aware clipping of each weight block on the calibration set
    rtn_dq = "rtn_dq"  # round to nearest: no calibration data

    @property
    def calibrates(self) -> bool:
        return self is not Int4Method.rtn_dq


class HighPrecision(Choice):
    """The type of the ops an INT8 graph leaves unquantized."""

    fp16 = "fp16"
    bf16 = "bf16"
    fp32 = "fp32"


class ProfilingVerbosity(Choice):
    layer_names_only = "layer_names_only"
    detailed = "detailed"  # tactics per layer in the engine inspector: what the layer hash covers
    none = "none"


class Layout(Choice):
    """How a client's image pixels are laid out."""

    NHWC = "NHWC"  # decoded images (PIL, OpenCV, video frames)
    NCHW = "NCHW"


class ColorOrder(Choice):
    RGB = "RGB"  # PIL, most decoders
    BGR = "BGR"  # OpenCV
