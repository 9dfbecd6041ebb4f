"""Pictures of StoryBot in Discord for the README, from the messages the real bot sends.

Runs the real bot against the local fake Discord (tests/e2e/fake_discord.py), plays a reader
and a curator, takes the message payloads the bot sent (embeds, buttons, menus), lays each out
as Discord shows it (an HTML mock-up, dark theme) and screenshots it with headless Chromium.

    pip install -e '.[test]'      # the fake Discord needs aiohttp
    apt-get install chromium      # Debian's package
    python scripts/render_screens.py            # writes docs/img/*.png (--keep-html: the mock-ups too)
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import settings_for, start_bot  # noqa: E402
from tests.e2e.fake_discord import FakeDiscord  # noqa: E402

WIDTH = 760
ASK = "How far did they push the trolley?"
VAGUE = ("trolley", "the border", "diplomats", "north korea", "covid", "pushed",
         "what colour was the trolley", "who cooked on the 32 hour train")  # fmt: skip
CURATORS = ["Curators"]

CSS = """
body { margin: 0; background: #313338; font: 15px/1.375 "DejaVu Sans", "Noto Sans", sans-serif;
       color: #dbdee1; width: %(w)dpx; }
.msg { display: flex; padding: 10px 16px 12px 16px; }
.avatar { width: 40px; height: 40px; border-radius: 50%%; background: #3b6fb6; color: white;
          font-weight: bold; display: flex; align-items: center; justify-content: center;
          margin-right: 16px; flex: none; }
.avatar.user { background: #8a5cd0; }
.body { min-width: 0; flex: 1; }
.name { color: #f2f3f5; font-weight: 600; }
.tag { background: #5865f2; color: white; font-size: 10px; border-radius: 3px; padding: 1px 4px;
       margin-left: 4px; vertical-align: 2px; }
.time { color: #949ba4; font-size: 12px; margin-left: 6px; }
.reply { color: #b5bac1; font-size: 13px; margin: 0 0 2px 56px; }
.eph { color: #949ba4; font-size: 12px; margin-top: 4px; }
.embed { background: #2b2d31; border-left: 4px solid %(colour)s; border-radius: 4px;
         padding: 8px 16px 14px 12px; margin-top: 6px; max-width: 560px; }
.embed .title { color: #f2f3f5; font-weight: 600; margin-top: 6px; }
.embed .desc { margin-top: 6px; }
.field-name { color: #f2f3f5; font-weight: 600; font-size: 14px; margin-top: 10px; }
blockquote { margin: 4px 0 0 0; padding-left: 10px; border-left: 4px solid #4e5058; }
.row { display: flex; gap: 8px; margin-top: 8px; flex-wrap: wrap; }
.btn { border-radius: 3px; padding: 2px 16px; min-height: 32px; display: inline-flex;
       align-items: center; font-size: 14px; font-weight: 500; color: white; background: #4e5058; }
.btn.s1 { background: #5865f2; } .btn.s4 { background: #da373c; } .btn.s3 { background: #248046; }
.select { background: #1e1f22; border-radius: 4px; padding: 10px 12px; color: #949ba4;
          width: 400px; display: flex; justify-content: space-between; }
.modal { background: #313338; border-radius: 8px; margin: 16px; padding: 16px; width: 440px;
         box-shadow: 0 0 0 1px #1e1f22; }
.modal h2 { color: #f2f3f5; font-size: 20px; margin: 0 0 12px 0; }
.label { color: #b5bac1; font-size: 12px; font-weight: 700; text-transform: uppercase; margin-top: 12px; }
.input { background: #1e1f22; border-radius: 3px; padding: 8px 10px; margin-top: 6px; min-height: 20px;
         white-space: pre-wrap; }
.caption { color: #949ba4; font-size: 13px; padding: 10px 16px 0 16px; }
"""


def md(text: str) -> str:
    """Enough of Discord's markdown for these pictures: escapes, bold, italics, code, quotes."""
    out = []
    for raw in text.split("\n"):
        quote = raw.startswith("> ")
        line = raw[2:] if quote else raw
        kept = re.findall(r"\\(.)", line)  # escaped characters are shown as themselves
        line = html.escape(re.sub(r"\\(.)", "\x00", line))
        line = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", line)
        line = re.sub(r"\*(.+?)\*", r"<i>\1</i>", line)
        line = re.sub(r"`(.+?)`", r"<code>\1</code>", line)
        for char in kept:
            line = line.replace("\x00", html.escape(char), 1)
        out.append(f"<blockquote>{line}</blockquote>" if quote else line + "<br>")
    return "".join(out)


def components_html(components: list[dict[str, Any]]) -> str:
    rows = []
    for row in components or []:
        items = []
        for c in row.get("components") or []:
            if c["type"] == 2:
                emoji = (c.get("emoji") or {}).get("name") or ""
                label = html.escape(c.get("label") or "")
                items.append(f'<span class="btn s{c.get("style", 2)}">{emoji} {label}</span>')
            elif c["type"] == 3:
                items.append(
                    f'<span class="select">{html.escape(c.get("placeholder") or "")}<span>⌄</span></span>'
                )
        rows.append(f'<div class="row">{"".join(items)}</div>')
    return "".join(rows)


def message_html(msg: dict[str, Any], *, ephemeral: bool = False) -> str:
    parts = []
    if msg.get("content"):
        parts.append(f"<div>{md(msg['content'])}</div>")
    for embed in msg.get("embeds") or []:
        colour = f"#{int(embed.get('color') or 0):06x}"
        inner = ""
        if embed.get("title"):
            inner += f'<div class="title">{md(embed["title"])}</div>'
        if embed.get("description"):
            inner += f'<div class="desc">{md(embed["description"])}</div>'
        for field in embed.get("fields") or []:
            inner += (
                f'<div class="field-name">{html.escape(field["name"])}</div><div>{md(field["value"])}</div>'
            )
        parts.append(f'<div class="embed" style="border-left-color:{colour}">{inner}</div>')
    parts.append(components_html(msg.get("components") or []))
    if ephemeral:
        parts.append('<div class="eph">👁 Only you can see this</div>')
    return (
        '<div class="msg"><div class="avatar">SB</div><div class="body">'
        '<span class="name">StoryBot</span><span class="tag">APP</span><span class="time">Today at 12:04</span>'
        f"{''.join(parts)}</div></div>"
    )


def user_line(text: str, name: str = "reader") -> str:
    return (
        '<div class="msg"><div class="avatar user">'
        f'{html.escape(name[:1].upper())}</div><div class="body"><span class="name">{html.escape(name)}</span>'
        f'<span class="time">Today at 12:04</span><div>{html.escape(text)}</div></div></div>'
    )


def modal_html(modal: dict[str, Any]) -> str:
    inputs = []
    for top in modal.get("components") or []:
        for c in top.get("components") or [top.get("component") or {}]:
            label = c.get("label") or top.get("label") or ""
            inputs.append(
                f'<div class="label">{html.escape(label)}</div><div class="input">{html.escape(c.get("value") or "")}</div>'
            )
    return f'<div class="modal"><h2>{html.escape(modal.get("title", ""))}</h2>{"".join(inputs)}</div>'


def page(body: str, caption: str) -> str:
    css = CSS % {"w": WIDTH, "colour": "#3478be"}
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{css}</style></head>"
        f"<body><div class='caption'>{html.escape(caption)}</div>{body}<div style='height:8px'></div></body></html>"
    )


def screenshot(chromium: str, html_path: Path, png: Path) -> None:
    """Two passes: measure the page's height, then shoot exactly that much."""
    measure = html_path.with_suffix(".measure.html")
    measure.write_text(
        html_path.read_text(encoding="utf-8").replace(
            "</body>", "<script>document.title='H'+document.body.scrollHeight</script></body>"
        ),
        encoding="utf-8",
    )
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", measure.as_uri()], capture_output=True, text=True, check=True)
    measure.unlink()
    height = int(re.search(r"<title>H(\d+)</title>", dom.stdout).group(1))  # type: ignore[union-attr]
    subprocess.run(
        [*flags, f"--window-size={WIDTH},{height}", f"--screenshot={png}", html_path.as_uri()],
        capture_output=True,
        check=True,
    )


async def capture() -> dict[str, str]:
    """Play a reader and a curator against the real bot; return each picture's HTML body."""
    bodies: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        knowledge = Path(tmp) / "knowledge"
        shutil.copytree(ROOT / "knowledge", knowledge)
        async with FakeDiscord() as fake:
            with fake.patch_discord():
                settings = replace(
                    settings_for(fake, knowledge, Path(tmp) / "data"), same_question_window_s=60.0
                )
                running = await start_bot(settings)
                try:
                    reader = fake.make_user(777000000000000301, "reader")
                    iid = await fake.slash_command("ask", {"question": ASK}, user=reader)
                    await fake.wait_for_reply(iid, 10)
                    answer = fake.messages[fake.interactions[iid].original_id or 0]
                    bodies["answer"] = user_line(f"/ask question: {ASK}", "reader") + message_html(answer)

                    service = running.bot.service
                    vague = next(q for q in VAGUE if service.ask(q).outcome == "suggest")
                    iid = await fake.slash_command("ask", {"question": vague}, user=reader)
                    await fake.wait_for_reply(iid, 10)
                    suggest = fake.messages[fake.interactions[iid].original_id or 0]
                    bodies["did-you-mean"] = user_line(f"/ask question: {vague}", "reader") + message_html(
                        suggest
                    )

                    for question in ("What colour was the trolley?", "what color was the trolley",
                                     "who paid for the flight home", "What colour was the trolley"):  # fmt: skip
                        running.bot.feedback.record_unanswered(question)
                    iid = await fake.slash_command("kb unanswered", roles=CURATORS)
                    await fake.wait_for_reply(iid, 10)
                    listing = fake.messages[fake.interactions[iid].original_id or 0]
                    bodies["curator-list"] = user_line("/kb unanswered", "curator") + message_html(
                        dict(listing), ephemeral=True
                    )
                    menu = listing["components"][0]["components"][0]
                    pid = await fake.component(menu["custom_id"], listing, component_type=3,
                                               values=[menu["options"][0]["value"]], roles=CURATORS)  # fmt: skip
                    await fake.wait_for_reply(pid, 10)
                    bodies["curator-panel"] = message_html(listing, ephemeral=True)
                    new = next(c for row in listing["components"] for c in row["components"]
                               if c.get("label") == "New entry from it")  # fmt: skip
                    form = await fake.wait_for_reply(
                        await fake.component(new["custom_id"], listing, roles=CURATORS), 10
                    )
                    bodies["curator-form"] = modal_html(form.json["data"])
                finally:
                    await running.stop()
    return bodies


CAPTIONS = {
    "answer": "A reader asks; the answer quotes the article's sentence.",
    "did-you-mean": "Unsure: the closest questions, as buttons.",
    "curator-list": "/kb unanswered: what readers asked that the bot could not answer, grouped.",
    "curator-panel": "One question: add it to an entry, start a new entry from it, or dismiss it.",
    "curator-form": "New entry from it: the form starts with the reader's question.",
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--keep-html", action="store_true", help="keep the HTML mock-ups beside the pictures")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        print("needs headless Chromium: apt-get install chromium", file=sys.stderr)
        return 1
    bodies = asyncio.run(capture())
    args.out.mkdir(parents=True, exist_ok=True)
    groups = {"answer": ["answer"], "did-you-mean": ["did-you-mean"],
              "curator": ["curator-list", "curator-panel", "curator-form"]}  # fmt: skip
    for name, parts in groups.items():
        body = "".join(f"<div class='caption'>{html.escape(CAPTIONS[p])}</div>{bodies[p]}" for p in parts)
        path = args.out / f"{name}.html"
        path.write_text(page(body, "").replace("<div class='caption'></div>", ""), encoding="utf-8")
        screenshot(chromium, path, args.out / f"{name}.png")
        if not args.keep_html:
            path.unlink()
        print(f"wrote {args.out / name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
