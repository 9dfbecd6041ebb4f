"""Regenerate bot/core/data/common_words.txt from the wordfreq package.

The matcher uses this list to tell ordinary English ("weather", "wife") from
story-specific terms, so it never "repairs" an everyday word into a story word
by typo correction. Run: `python scripts/make_common_words.py` (needs the dev
extra: `pip install -e '.[dev]'`). The list is shipped so that the runtime does
not depend on wordfreq and `storybot ask` starts fast.
"""

from __future__ import annotations

import re
from pathlib import Path

from wordfreq import top_n_list

TOP_N = 40_000
OUT = Path(__file__).resolve().parent.parent / "bot" / "core" / "data" / "common_words.txt"


def main() -> None:
    # Most frequent first: the matcher uses a word's rank, not just its presence.
    words = list(dict.fromkeys(w for w in top_n_list("en", TOP_N) if re.fullmatch(r"[a-z]+", w)))
    OUT.write_text(
        f"# Top {TOP_N} English words (wordfreq), letters only, most frequent first; made by {Path(__file__).name}\n"
        + "\n".join(words)
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {len(words)} words to {OUT}")


if __name__ == "__main__":
    main()
