"""Where the forward pass's time goes: the weight products of the model's layers, alone.

    python benchmarks/products.py

Times the 24 matrix products of all-MiniLM-L6-v2's six layers (random float32 weights of the same
shapes) for 1 and 8 rows (word pieces), with the weights of six layers (42 MB, more than this
machine's 32 MB cache) and of three (21 MB, in cache; shown times two). A one-row product streams
its weights; comparing the rows shows what memory costs and what the product itself costs
(docs/performance.md). Medians of 100 runs; the machine is shared, so compare figures of one run.

Then one layer of the shipped model at 11 rows, its weights in cache, piece by piece: the four
products, GELU and the layer norms (the code of `bot.core.embedding`), and the word-piece cut.
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


def layer_pieces(rows: int = 11) -> list[tuple[str, float]]:
    """Milliseconds for each piece of the shipped model's first layer at `rows` rows."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bot.core.embedding import _gelu, _layer_norm, default_encoder

    encoder = default_encoder()
    qkv_w, _, out_w, _, norm_w, norm_b, in_w, _, ff_w, *_ = encoder._layers[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, rows, 384), dtype=np.float32)
    wide = rng.standard_normal((1, rows, 1536), dtype=np.float32)
    question = "how many people crossed the border on the trolley"
    pieces = [
        ("query/key/value product", lambda: x @ qkv_w),
        ("attention output product", lambda: x @ out_w),
        ("feed-forward in product", lambda: x @ in_w),
        ("feed-forward out product", lambda: wide @ ff_w),
        ("GELU", lambda: _gelu(wide)),
        ("layer norm (one of two)", lambda: _layer_norm(x, norm_w, norm_b, 1e-12)),
        ("word pieces of a 9-word question", lambda: encoder._tokenizer.encode(question, 256)),
    ]
    return [(name, median_ms(fn, runs=500)) for name, fn in pieces]


def main() -> int:
    print("| the 24 weight products of the six layers alone | 1 row | 8 rows |")
    print("| --- | ---: | ---: |")
    six = [products(6, rows) for rows in (1, 8)]
    three = [2 * products(3, rows) for rows in (1, 8)]
    print(f"| six layers, 42 MB of float32 | {six[0]:.2f} ms | {six[1]:.2f} ms |")
    print(f"| three layers, 21 MB (in cache), times two | {three[0]:.2f} ms | {three[1]:.2f} ms |")
    print()
    print("| one layer of the shipped model, 11 rows, in cache | ms |")
    print("| --- | ---: |")
    for name, ms in layer_pieces():
        print(f"| {name} | {ms:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
