"""Deterministic synthetic knowledge bases of any size, built around the shipped one.

`make_knowledge(n, folder)` writes a knowledge folder with `n` entries: the 63 shipped
entries unchanged (so the held-out questions stay answerable) plus generated ones. Each
generated entry recombines the story's own vocabulary -- the question types, verbs and
objects of the shipped entries -- with other subjects (``the Swedish aid workers``,
``the Cuban envoys``) and objects (``their heavy suitcases``), in four phrasings (a full
question, a reworded one, a terse fragment and a chatty one), like the shipped entries.
Sources are verbatim sentences of the article (taken from the shipped entries' sources),
so the folder validates exactly as a curated one would. The same `n` and `seed` always
give the same files.

The vocabulary is deliberately narrow (a few hundred words shared by 100k entries, most
of them the story's own words): every question word is in thousands of phrasings, the
hard case for an index, and synthetic entries compete with the real ones.
"""

from __future__ import annotations

import itertools
import random
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.core.knowledge import load_knowledge, phrasing_key  # noqa: E402

NATIONS = (
    "Chinese", "British", "German", "Swedish", "Polish", "Cuban", "Mongolian", "Indian",
    "Egyptian", "Vietnamese", "Laotian", "Syrian", "Iranian", "Czech", "Bulgarian",
    "Romanian", "Brazilian", "Nigerian", "Indonesian", "Pakistani",
)  # fmt: skip
GROUPS = (
    "diplomats", "embassy staff", "aid workers", "envoys", "engineers", "journalists",
    "trade officials", "military attaches",
)  # fmt: skip
ADJECTIVES = ("heavy", "spare", "old", "wooden", "diplomatic", "personal", "frozen", "broken")
THINGS = (
    "luggage", "suitcases", "bicycles", "documents", "food supplies", "train tickets",
    "winter coats", "passports", "pets", "medicines", "radios", "flags", "maps", "cameras",
    "handcarts",
)  # fmt: skip
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# (type, four phrasings, answer): {s} subject, {o} object, {n} a number, {d} a day.
FAMILIES: tuple[tuple[str, tuple[str, str, str, str], str], ...] = (
    ("how-far", ("How far did the {s} push their {o}?", "what distance did the {s} carry their {o}",
                 "{s} {o} distance", "hey how many km did the {s} drag their {o}"),
     "The {s} moved their {o} about {n} kilometres."),
    ("when", ("When did the {s} leave with their {o}?", "what day did the {s} set off with their {o}",
              "{s} {o} departure date", "so which day did the {s} pack their {o}"),
     "The {s} left with their {o} on {d}."),
    ("who", ("Who helped the {s} load their {o}?", "who carried the {o} for the {s}",
             "{s} {o} helper", "anyone know who looked after the {o} of the {s}"),
     "Border guards helped the {s} with their {o}."),
    ("why", ("Why did the {s} abandon their {o}?", "what was the reason the {s} left their {o} behind",
             "{s} dropped {o} why", "how come the {s} gave up their {o}"),
     "The {s} left their {o} because the border was closed."),
    ("how-many", ("How many of their {o} did the {s} bring?", "number of {o} the {s} brought",
                  "{s} {o} count", "quick q how many {o} did the {s} pack"),
     "The {s} brought {n} of their {o}."),
    ("where", ("Where did the {s} store their {o}?", "which place did the {s} keep their {o} in",
               "{s} {o} location", "where were the {o} of the {s} kept"),
     "The {s} kept their {o} at the embassy in Pyongyang."),
    ("how-long", ("How long did the {s} wait for their {o}?", "how many hours did the {s} spend on their {o}",
                  "{s} {o} wait time", "how long were the {o} of the {s} delayed"),
     "The {s} waited {n} hours for their {o}."),
    ("yes-no", ("Did the {s} travel with their {o}?", "were the {o} taken along by the {s}",
                "{s} with {o}?", "is it true the {s} had their {o} with them"),
     "Yes, the {s} travelled with their {o}."),
    ("what", ("What happened to the {o} of the {s}?", "what became of the {o} the {s} owned",
              "{s} {o} what happened", "tell me about the {s} and their {o}"),
     "The {o} of the {s} were sent on by train."),
    ("how", ("How did the {s} transport their {o}?", "in what way did the {s} move their {o}",
             "{s} {o} transport", "by what means did the {s} get their {o} home"),
     "The {s} moved their {o} on a rail trolley."),
    ("who", ("Who sent the {o} to the {s}?", "who was it that shipped the {o} to the {s}",
             "{o} sender {s}", "lol who mailed the {s} their {o}"),
     "The foreign ministry sent the {o} to the {s}."),
    ("where", ("Where did the {s} buy their {o}?", "in which city did the {s} purchase their {o}",
               "{s} {o} shop", "where did the {s} get hold of their {o}"),
     "The {s} bought their {o} in Vladivostok."),
    ("why", ("Why did the {s} need their {o}?", "what did the {s} need the {o} for",
             "reason {s} needed {o}", "why were the {o} so important to the {s}"),
     "The {s} needed their {o} for the long journey home."),
    ("what", ("What did the {s} say about their {o}?", "what comment did the {s} make on their {o}",
              "{s} {o} statement", "did the {s} say anything about the {o}"),
     "The {s} said their {o} were in good order."),
    ("how-many", ("How many people shared the {o} with the {s}?", "number of people sharing the {o} with the {s}",
                  "{s} {o} sharers count", "how many ppl used the {o} with the {s}"),
     "{n} people shared the {o} with the {s}."),
    ("when", ("When did the {s} lose their {o}?", "what year did the {s} misplace their {o}",
              "{s} lost {o} when", "at what time did the {s} lose the {o}"),
     "The {s} lost their {o} {n} years ago."),
)  # fmt: skip

SHIPPED = ROOT / "knowledge"


def _synthetic_entries(count: int, seed: int, taken: set[str], sources: list[str]) -> list[dict[str, object]]:
    rng = random.Random(seed)
    subjects = [f"{n} {g}" for n, g in itertools.product(NATIONS, GROUPS)]
    objects = [f"{a} {t}" for a, t in itertools.product(ADJECTIVES, THINGS)]
    space = len(FAMILIES) * len(subjects) * len(objects)
    if count > space:
        raise ValueError(f"at most {space} synthetic entries")
    out: list[dict[str, object]] = []
    codes = list(range(space))
    rng.shuffle(codes)
    for code in codes:
        if len(out) == count:
            break
        f, rest = divmod(code, len(subjects) * len(objects))
        s, o = divmod(rest, len(objects))
        qtype, phrasings, answer = FAMILIES[f]
        fill = {"s": subjects[s], "o": objects[o], "n": rng.randint(2, 90), "d": rng.choice(DAYS)}
        texts = [p.format(**fill) for p in phrasings]
        if any(phrasing_key(t) in taken for t in texts):
            continue
        taken.update(phrasing_key(t) for t in texts)
        text = answer.format(**fill)
        out.append(
            {
                "id": f"syn-{f}-{s}-{o}",
                "type": qtype,
                "question": texts[0][0].upper() + texts[0][1:],
                "alternates": texts[1:],
                "answer": text[0].upper() + text[1:],
                "source": rng.choice(sources),
                "tags": ["synthetic"],
            }
        )
    return out


VERSION = 1
"""Bump when the generator changes, so cached folders are made again."""


def make_knowledge(count: int, folder: Path, seed: int = 1) -> Path:
    """Write a knowledge folder of `count` entries (the shipped ones included) and return it."""
    shipped = load_knowledge(SHIPPED)
    if count < len(shipped):
        raise ValueError(f"at least {len(shipped)} entries (the shipped ones)")
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "entries").mkdir(parents=True)
    for name in ("story.yaml", "article.txt", "synonyms.yaml"):
        shutil.copy(SHIPPED / name, folder / name)
    for path in (SHIPPED / "entries").glob("*.yaml"):
        shutil.copy(path, folder / "entries" / path.name)
    taken = {phrasing_key(p) for e in shipped for p in e.phrasings}
    sources = sorted({s for e in shipped for s in e.sources})
    entries = _synthetic_entries(count - len(shipped), seed, taken, sources)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(entries, Dumper=dumper, sort_keys=False, allow_unicode=True, width=4096)
    (folder / "entries" / "synthetic.yaml").write_text(text, encoding="utf-8")
    return folder


if __name__ == "__main__":
    import tempfile
    import time

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "knowledge"
    make_knowledge(size, target)
    start = time.perf_counter()
    kb = load_knowledge(target)
    print(f"{target}: {len(kb)} entries, loaded in {time.perf_counter() - start:.2f} s")
