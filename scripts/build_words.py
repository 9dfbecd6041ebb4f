"""Build the word-vector table the matcher loads: `bot/core/data/words.npz`.

Each of the 20,000 commonest English words (`bot/core/data/common_words.txt`, from wordfreq) is
read alone by the shipped sentence model (`bot/core/data/model/`, built by build_model.py) and
its unit vector kept, rounded to int8 with one scale per word (7.7 MB, stored uncompressed so it loads fast; cosines move by < 0.01).
The matcher compares a question's words with an entry's words through these vectors: "slim down"
is close to "lose weight", "tall" is far from every word of an answer about a capsule's width.
An entry's own words outside the table are encoded when the knowledge base loads (and cached).

    python scripts/build_words.py      # about 2 minutes on 2 cores; needs nothing but the runtime

The same model and word list give the same table (to int8 rounding; tests/core/test_embedding.py
re-encodes a sample of words and compares).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.embedding import MODEL_DIR, WORDS_FILE, Encoder, quantise  # noqa: E402
from bot.core.lexical import common_words  # noqa: E402

SIZE = 20_000


def build(model: Path = MODEL_DIR, out: Path = WORDS_FILE) -> None:
    """The table of the model in the folder `model`, written to `out`."""
    ranked = sorted(common_words().items(), key=lambda item: item[1])[:SIZE]
    words = [w for w, _ in ranked]
    encoder = Encoder(model)
    vectors = np.concatenate([encoder.encode(words[i : i + 512]) for i in range(0, len(words), 512)])
    codes, scales = quantise(vectors)
    with out.open("wb") as handle:
        np.savez(  # not compressed: it loads in a few ms
            handle,
            words=np.frombuffer("\n".join(words).encode(), dtype=np.uint8),  # utf-8, one a line
            codes=codes,
            scales=scales,
            model=np.array(encoder.fingerprint),
        )
    print(f"wrote {len(words)} words to {out} ({out.stat().st_size / 1e6:.1f} MB)")


def main() -> int:
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
