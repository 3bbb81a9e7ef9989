#!/usr/bin/env python3
"""stats.py FILE.dat...: the summary of benchmark data (bench/lib.sh's
format: "KEY UNIT V1 V2 ...", every repetition). Also a module for
bench/report.py.

A figure is the median of its repetitions; its spread the quartiles
(q1-q3, by the median of each half) and the extremes (min-max)."""
import statistics
import sys


def load(path):
    """{key: (unit, [values])}; a key given twice keeps its later line."""
    rows = {}
    for line in open(path):
        f = line.split()
        if len(f) >= 2:
            try:
                rows[f[0]] = (f[1], [float(v) for v in f[2:]])
            except ValueError:
                rows[f[0]] = (f[1], [])
    return rows


class Fig:
    """The summary of one series."""

    def __init__(self, values, unit=""):
        xs = sorted(values)
        self.unit, self.n = unit, len(xs)
        if not xs:
            self.med = self.min = self.max = self.q1 = self.q3 = float("nan")
            return
        self.med, self.min, self.max = statistics.median(xs), xs[0], xs[-1]
        half = len(xs) // 2
        lo, hi = xs[:half] or xs, xs[len(xs) - half:] or xs
        self.q1, self.q3 = statistics.median(lo), statistics.median(hi)

    def text(self, digits=None):
        """'12.3 (q 11.9-12.8, 11.2-14.0, n=10)'"""
        d = digits if digits is not None else places(self.med)
        f = lambda v: f"{v:.{d}f}"
        return (f"{f(self.med)} (q {f(self.q1)}–{f(self.q3)}, "
                f"{f(self.min)}–{f(self.max)}, n={self.n})")


def places(v):
    """Decimals that show v to about three significant digits."""
    v = abs(v)
    if v != v or v >= 100:
        return 0
    if v >= 10:
        return 1
    if v >= 1:
        return 2
    return 3


def main():
    for path in sys.argv[1:]:
        for key, (unit, vals) in load(path).items():
            if len(vals) == 1:
                print(f"  {key:34} {vals[0]:g} {unit}")
            elif vals:
                print(f"  {key:34} {Fig(vals).text()} {unit}")


if __name__ == "__main__":
    main()
