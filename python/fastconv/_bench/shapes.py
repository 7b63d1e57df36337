"""The benchmark suite of ANCHORS.md (the project's performance anchors) as data.

Twelve conv layers (NCHW input, OIHW weight, no bias) and four pooling cases (N=8).
``gflop`` is ANCHORS' count, 2*N*K*(C/groups)*KH*KW*Ho*Wo, the same for fwd, bwd_data and
bwd_weight. Pools are memory-bound: ``compulsory_bytes`` is one read of the input plus one write of
the output (forward) or one read of grad_out plus one write of grad_x (backward) — the figure
ANCHORS turns into GB/s (max-pool indices are not counted). The figures are for float32;
``gbytes_for(itemsize)`` scales them for float64.

``quick`` variants (env FASTCONV_BENCH_QUICK=1 or ``--quick``) divide the batch by 4 (at least 1)
so that a whole pass fits in a CI minute; ratios are what count, not absolute times.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

FLOAT32_BYTES = 4
QUICK_DIVISOR = 4

CONV_OPS = ("fwd", "bwd_data", "bwd_weight")
POOL_OPS = ("fwd", "bwd")


def _out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@dataclass(frozen=True)
class ConvCase:
    name: str
    N: int
    C: int
    K: int
    H: int
    W: int
    kernel: int
    stride: int = 1
    pad: int = 0
    dilation: int = 1
    groups: int = 1

    @property
    def KH(self) -> int:
        return self.kernel

    @property
    def KW(self) -> int:
        return self.kernel

    @property
    def Ho(self) -> int:
        return _out_size(self.H, self.kernel, self.stride, self.pad, self.dilation)

    @property
    def Wo(self) -> int:
        return _out_size(self.W, self.kernel, self.stride, self.pad, self.dilation)

    @property
    def x_shape(self) -> Tuple[int, int, int, int]:          # NCHW
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> Tuple[int, int, int, int]:          # OIHW (K, C/groups, KH, KW)
        return (self.K, self.C // self.groups, self.KH, self.KW)

    @property
    def y_shape(self) -> Tuple[int, int, int, int]:          # NCHW
        return (self.N, self.K, self.Ho, self.Wo)

    @property
    def flops(self) -> int:
        return (2 * self.N * self.K * (self.C // self.groups) * self.KH * self.KW
                * self.Ho * self.Wo)

    @property
    def gflop(self) -> float:
        return self.flops / 1e9

    @property
    def im2col_bytes(self) -> int:
        """Size of the (C*KH*KW, N*Ho*Wo) float32 im2col buffer (the memory target's yardstick)."""
        return FLOAT32_BYTES * self.C * self.KH * self.KW * self.N * self.Ho * self.Wo

    def kwargs(self) -> dict:
        """Keyword arguments of fastconv.conv2d / torch.nn.functional.conv2d."""
        return dict(stride=self.stride, padding=self.pad, dilation=self.dilation,
                    groups=self.groups)

    def with_batch(self, n: int) -> "ConvCase":
        return dataclasses.replace(self, N=n)

    def describe(self) -> str:
        extra = []
        if self.groups != 1:
            extra.append(f"groups={self.groups}")
        if self.dilation != 1:
            extra.append(f"dil={self.dilation}")
        return (f"N={self.N} {self.C}->{self.K} {self.H}x{self.W} k{self.kernel} s{self.stride} "
                f"p{self.pad}" + (" " + " ".join(extra) if extra else ""))


@dataclass(frozen=True)
class PoolCase:
    name: str
    kind: str        # "max", "avg" or "global" (global average)
    N: int
    C: int
    H: int
    W: int
    kernel: int = 1  # unused for "global"
    stride: int = 1
    pad: int = 0

    @property
    def Ho(self) -> int:
        return 1 if self.kind == "global" else _out_size(self.H, self.kernel, self.stride, self.pad)

    @property
    def Wo(self) -> int:
        return 1 if self.kind == "global" else _out_size(self.W, self.kernel, self.stride, self.pad)

    @property
    def x_shape(self) -> Tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> Tuple[int, int, int, int]:
        return (self.N, self.C, self.Ho, self.Wo)

    @property
    def compulsory_bytes(self) -> int:
        """Input read once + output written once (fwd); grad_out read + grad_x written (bwd)."""
        n_in = self.N * self.C * self.H * self.W
        n_out = self.N * self.C * self.Ho * self.Wo
        return FLOAT32_BYTES * (n_in + n_out)

    @property
    def gbytes(self) -> float:
        return self.compulsory_bytes / 1e9

    def gbytes_for(self, itemsize: int) -> float:
        """GB of compulsory traffic for elements of ``itemsize`` bytes (4: float32)."""
        return self.gbytes * itemsize / FLOAT32_BYTES

    def with_batch(self, n: int) -> "PoolCase":
        return dataclasses.replace(self, N=n)

    def describe(self) -> str:
        if self.kind == "global":
            return f"N={self.N} C={self.C} {self.H}x{self.W} global avg"
        return (f"N={self.N} C={self.C} {self.H}x{self.W} {self.kind} k{self.kernel} "
                f"s{self.stride} p{self.pad}")


CONV_LAYERS: Tuple[ConvCase, ...] = (
    ConvCase("lenet_conv1", 64, 1, 6, 28, 28, 5, 1, 2),
    ConvCase("lenet_conv2", 64, 6, 16, 14, 14, 5, 1, 0),
    ConvCase("resnet_stem_7x7s2", 8, 3, 64, 224, 224, 7, 2, 3),
    ConvCase("r3x3_64@56", 8, 64, 64, 56, 56, 3, 1, 1),
    ConvCase("r3x3_128@28", 8, 128, 128, 28, 28, 3, 1, 1),
    ConvCase("r3x3_256@14", 8, 256, 256, 14, 14, 3, 1, 1),
    ConvCase("r3x3_512@7", 8, 512, 512, 7, 7, 3, 1, 1),
    ConvCase("3x3s2_64to128@56", 8, 64, 128, 56, 56, 3, 2, 1),
    ConvCase("1x1_256to64@56", 8, 256, 64, 56, 56, 1, 1, 0),
    ConvCase("1x1_64to256@56", 8, 64, 256, 56, 56, 1, 1, 0),
    ConvCase("dw3x3_128@56", 8, 128, 128, 56, 56, 3, 1, 1, groups=128),
    ConvCase("dil2_3x3_64@56", 8, 64, 64, 56, 56, 3, 1, 2, dilation=2),
)

POOL_CASES: Tuple[PoolCase, ...] = (
    PoolCase("maxpool3x3s2p1_64@112", "max", 8, 64, 112, 112, 3, 2, 1),
    PoolCase("maxpool2x2s2_64@224", "max", 8, 64, 224, 224, 2, 2, 0),
    PoolCase("avgpool2x2s2_64@224", "avg", 8, 64, 224, 224, 2, 2, 0),
    PoolCase("globalavg_512@7", "global", 8, 512, 7, 7),
)

# ANCHORS' GFLOP column, to catch a typo in the table above (checked in test_baselines.py).
ANCHOR_GFLOP = {
    "lenet_conv1": 0.0151, "lenet_conv2": 0.0307, "resnet_stem_7x7s2": 1.89,
    "r3x3_64@56": 1.85, "r3x3_128@28": 1.85, "r3x3_256@14": 1.85, "r3x3_512@7": 1.85,
    "3x3s2_64to128@56": 0.925, "1x1_256to64@56": 0.822, "1x1_64to256@56": 0.822,
    "dw3x3_128@56": 0.0578, "dil2_3x3_64@56": 1.85,
}


def quick_from_env() -> bool:
    """True when FASTCONV_BENCH_QUICK is set to anything but '', '0', 'false', 'no'."""
    return os.environ.get("FASTCONV_BENCH_QUICK", "").strip().lower() not in ("", "0", "false",
                                                                              "no", "off")


def _quick(case, quick: bool):
    return case.with_batch(max(1, case.N // QUICK_DIVISOR)) if quick else case


def _select(cases, names: Optional[Sequence[str]], what: str):
    if not names:
        return list(cases)
    by_name = {c.name: c for c in cases}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in names]


def conv_layers(quick: Optional[bool] = None, names: Optional[Sequence[str]] = None
                ) -> List[ConvCase]:
    """The conv suite (optionally a subset by name); quick=None reads FASTCONV_BENCH_QUICK."""
    q = quick_from_env() if quick is None else quick
    return [_quick(c, q) for c in _select(CONV_LAYERS, names, "conv layer(s)")]


def pool_cases(quick: Optional[bool] = None, names: Optional[Sequence[str]] = None
               ) -> List[PoolCase]:
    """The pooling suite (optionally a subset by name); quick=None reads FASTCONV_BENCH_QUICK."""
    q = quick_from_env() if quick is None else quick
    return [_quick(c, q) for c in _select(POOL_CASES, names, "pool case(s)")]


def all_names() -> List[str]:
    return [c.name for c in CONV_LAYERS] + [c.name for c in POOL_CASES]
