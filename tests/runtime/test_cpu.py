"""The CPU every bench row names: /proc/cpuinfo texts of x86 and Arm machines (not this machine's)."""

import pytest

from effnet.runtime import cpu as machine
from effnet.runtime.cpu import CpuInfo, cpu_info, parse_cpuinfo

# Excerpts of real /proc/cpuinfo files: two cores each where the second matters, flags trimmed.
INTEL_AVX2 = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c \
rdrand lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 smep bmi2 erms invpcid mpx rdseed adx smap clflushopt

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2
"""

XEON_VNNI = """\
processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl \
avx512ifma avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq
"""

SAPPHIRE_RAPIDS = """\
processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: sse4_2 avx avx2 avx_vnni avx512_bf16 avx512f avx512_vnni amx_bf16 amx_tile amx_int8
"""

GRAVITON3 = """\
processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma \
lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm \
svebf16 i8mm bf16 dgh rng
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 2100.00
Features\t: fp asimd asimddp sve i8mm
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1
"""

# a phone: four little cores and four big ones of an Arm design, plus the kernel's Hardware line
PHONE = """\
processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd05

processor\t: 4
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b

Hardware\t: Qualcomm Technologies, Inc SM8150
"""


def test_intel_avx2_only():
    cpu = parse_cpuinfo(INTEL_AVX2)
    assert cpu == CpuInfo("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz", ("avx2",), bf16=False)
    assert cpu.label == "Intel Core i7-8700 [avx2]"


def test_avx512_vnni():
    cpu = parse_cpuinfo(XEON_VNNI)
    assert cpu.features == ("avx2", "avx512", "avx512_vnni")  # no avx_vnni, no amx
    assert cpu.label == "Intel Xeon Platinum 8380 [avx2 avx512 avx512_vnni]"
    assert parse_cpuinfo(SAPPHIRE_RAPIDS).features == ("avx2", "avx512", "avx512_vnni", "avx_vnni", "amx")


def test_arm_server_named_by_its_core():
    cpu = parse_cpuinfo(GRAVITON3)
    assert cpu == CpuInfo(
        "Neoverse-V1", ("neon", "dotprod", "i8mm", "sve"), bf16=True
    )  # "svei8mm" is not "i8mm"
    assert cpu.label == "Neoverse-V1 [neon dotprod i8mm sve]"
    assert cpu.to_dict() == {"cpu": "Neoverse-V1", "cpu_features": ["neon", "dotprod", "i8mm", "sve"]}


def test_arm_with_two_core_types_and_unknown_parts():
    assert parse_cpuinfo(PHONE) == CpuInfo("Cortex-A55+Cortex-A76", ("neon", "dotprod"), bf16=False)
    unknown = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x61\nCPU part\t: 0x022\n"
    assert parse_cpuinfo(unknown) == CpuInfo("Apple part 0x022", ("neon",), bf16=False)


def test_bf16_instructions_are_read_apart_from_the_int8_features():
    assert parse_cpuinfo(SAPPHIRE_RAPIDS).bf16 and parse_cpuinfo(GRAVITON3).bf16  # amx_bf16; Arm "bf16"
    assert not parse_cpuinfo(XEON_VNNI).bf16 and not parse_cpuinfo(PHONE).bf16
    avx512_bf16 = "model name\t: AMD EPYC 9654\nflags\t\t: avx2 avx512f avx512_vnni avx512_bf16\n"
    cpu = parse_cpuinfo(avx512_bf16)
    assert cpu.bf16 and cpu.features == ("avx2", "avx512", "avx512_vnni")  # bench labels stay as they were


def test_no_int8_features_is_said():
    cpu = parse_cpuinfo("model name\t: Intel(R) Atom(TM) CPU N270 @ 1.60GHz\nflags\t\t: fpu sse sse2 ssse3\n")
    assert cpu.features == () and cpu.label == "Intel Atom N270 [no int8 features]"


def test_without_proc_cpuinfo_falls_back_to_the_os_name(monkeypatch):
    def no_file(*args, **kwargs):
        raise FileNotFoundError("/proc/cpuinfo")

    cpu_info.cache_clear()
    monkeypatch.setattr(machine, "open", no_file, raising=False)  # the module's open, not everyone's
    monkeypatch.setattr(machine.platform, "processor", lambda: "arm")
    try:
        cpu = cpu_info()
    finally:
        cpu_info.cache_clear()
    assert cpu == CpuInfo("arm", None)
    assert cpu.label == "arm [features unknown]"
    assert cpu.to_dict() == {"cpu": "arm", "cpu_features": None}


@pytest.mark.parametrize("text", ["", "garbage without colons\n"])
def test_empty_or_odd_text_still_names_something(text):
    cpu = parse_cpuinfo(text)
    assert cpu.name and cpu.features == ()
