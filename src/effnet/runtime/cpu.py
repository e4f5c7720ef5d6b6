"""Which CPU a measurement ran on, and the instruction-set features that decide its int8 speed.

int8 latency depends less on clock speed than on how many 8-bit multiply-adds one instruction does: AVX2,
AVX-512, VNNI (AVX-512 or AVX) and AMX on x86; NEON, the dot product (SDOT/UDOT) and i8mm (SMMLA) and SVE on
Arm. Two rows that differ there are not comparable, so every `effnet bench` row names them. They also
decide whether ONNX Runtime's int8 kernels are exact for a file (`CpuInfo.saturates_int8_pairs`).
Apart from them, `CpuInfo.bf16` says whether bf16 training can run at speed on this CPU.
"""

from __future__ import annotations

import functools
import platform
import re
from dataclasses import dataclass

# /proc/cpuinfo flag -> the name effnet reports, in the order reported
X86_FEATURES = {
    "avx2": "avx2",
    "avx512f": "avx512",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "amx_int8": "amx",
}
ARM_FEATURES = {"asimd": "neon", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "sve"}
# bf16 multiply instructions (AVX512-BF16, AMX-BF16; Arm's BFDOT / BFMMLA): without them PyTorch emulates
# bf16 on the CPU
X86_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
ARM_BF16_FLAGS = {"bf16"}

# aarch64 /proc/cpuinfo names no model: "CPU implementer" and "CPU part" identify the core (the codes are
# the MIDR fields in each vendor's reference manual). The cores of common servers, boards and phones.
ARM_IMPLEMENTERS = {"0x41": "Arm", "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere"}
ARM_PARTS = {
    ("0x41", "0xd03"): "Cortex-A53",
    ("0x41", "0xd05"): "Cortex-A55",
    ("0x41", "0xd08"): "Cortex-A72",
    ("0x41", "0xd0b"): "Cortex-A76",
    ("0x41", "0xd41"): "Cortex-A78",
    ("0x41", "0xd44"): "Cortex-X1",
    ("0x41", "0xd0c"): "Neoverse-N1",
    ("0x41", "0xd40"): "Neoverse-V1",
    ("0x41", "0xd49"): "Neoverse-N2",
    ("0x41", "0xd4f"): "Neoverse-V2",
    ("0xc0", "0xac3"): "AmpereOne",
}

_NAME_NOISE = re.compile(r"\((?:R|TM|tm)\)|\bCPU\b|\bProcessor\b|@\s*[\d.]+\s*GHz")


@dataclass(frozen=True)
class CpuInfo:
    """A CPU's model name and its int8-relevant features (None: they could not be read on this system).
    ``bf16``: whether it has bf16 multiply instructions (x86 ``avx512_bf16`` or ``amx_bf16``, Arm ``bf16``);
    None: unknown."""

    name: str
    features: tuple[str, ...] | None
    bf16: bool | None = None

    @property
    def label(self) -> str:
        """Short enough for a table cell: ``AMD EPYC 9654 96-Core [avx2 avx512 avx512_vnni]``."""
        short = " ".join(_NAME_NOISE.sub(" ", self.name).split()) or self.name
        if self.features is None:
            return f"{short} [features unknown]"
        return f"{short} [{' '.join(self.features) or 'no int8 features'}]"

    @property
    def saturates_int8_pairs(self) -> bool:
        """Whether ONNX Runtime's uint8 x int8 kernels add pairs of products in int16 and saturate on this
        CPU: x86 without VNNI or AMX (AVX2, AVX-512 alone; unknown features on x86 count as such). ARM
        kernels and VNNI accumulate in int32."""
        if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
            return False
        return self.features is None or not {"avx512_vnni", "avx_vnni", "amx"} & set(self.features)

    def to_dict(self) -> dict[str, object]:
        return {"cpu": self.name, "cpu_features": None if self.features is None else list(self.features)}


def parse_cpuinfo(text: str) -> CpuInfo:
    """The CPU described by the text of a Linux /proc/cpuinfo (x86 or Arm); the first core's fields count,
    except that an Arm system of several core types is named by all of them (``Cortex-A55+Cortex-A76``)."""
    fields: dict[str, str] = {}
    arm_cores: list[str] = []
    core: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        key, sep, value = line.partition(":")
        if sep:
            key, value = key.strip(), value.strip()
            fields.setdefault(key, value)
            core[key] = value
        elif core:  # a blank line ends one core's block
            if "CPU part" in core:
                arm_cores.append(_arm_core(core.get("CPU implementer", ""), core["CPU part"]))
            core = {}
    if "flags" in fields:
        flags, table, bf16_flags = set(fields["flags"].split()), X86_FEATURES, X86_BF16_FLAGS
    else:
        flags, table, bf16_flags = set(fields.get("Features", "").split()), ARM_FEATURES, ARM_BF16_FLAGS
    features = tuple(name for flag, name in table.items() if flag in flags)
    name = fields.get("model name") or "+".join(dict.fromkeys(arm_cores)) or platform.machine() or "unknown"
    return CpuInfo(name, features, bool(bf16_flags & flags))


def _arm_core(implementer: str, part: str) -> str:
    known = ARM_PARTS.get((implementer.lower(), part.lower()))
    if known:
        return known
    vendor = ARM_IMPLEMENTERS.get(implementer.lower(), f"implementer {implementer or '?'}")
    return f"{vendor} part {part}"


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU: from /proc/cpuinfo on Linux, else the name the OS gives (features unknown)."""
    try:
        with open("/proc/cpuinfo") as handle:
            return parse_cpuinfo(handle.read())
    except OSError:  # macOS, Windows
        return CpuInfo(platform.processor() or platform.machine() or "unknown", None)
