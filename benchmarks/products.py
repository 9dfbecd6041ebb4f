"""Where the forward pass's time goes: the weight products of the model's layers, alone.

    python benchmarks/products.py

Times the 24 matrix products of all-MiniLM-L6-v2's six layers (random float32 weights of the same
shapes) for 1 and 8 rows (word pieces), with the weights of six layers (42 MB, more than this
machine's 32 MB cache) and of three (21 MB, in cache; shown times two). A one-row product streams
its weights; comparing the rows shows what memory costs and what the product itself costs
(docs/performance.md). Medians of 100 runs; the machine is shared, so compare figures of one run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

SHAPES = ((384, 1152), (384, 384), (384, 1536), (1536, 384))
"""One layer: query/key/value together, attention output, feed-forward in and out."""


def median_ms(fn: Callable[[], object], runs: int = 100) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def products(layers: int, rows: int) -> float:
    """Milliseconds for the products of `layers` layers at `rows` rows."""
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(shape, dtype=np.float32) for _ in range(layers) for shape in SHAPES]
    inputs = {k: np.ones((rows, k), np.float32) for k in (384, 1536)}

    def run() -> None:
        for w in weights:
            inputs[w.shape[0]] @ w

    return median_ms(run)


def main() -> int:
    print("| the 24 weight products of the six layers alone | 1 row | 8 rows |")
    print("| --- | ---: | ---: |")
    six = [products(6, rows) for rows in (1, 8)]
    three = [2 * products(3, rows) for rows in (1, 8)]
    print(f"| six layers, 42 MB of float32 | {six[0]:.2f} ms | {six[1]:.2f} ms |")
    print(f"| three layers, 21 MB (in cache), times two | {three[0]:.2f} ms | {three[1]:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
