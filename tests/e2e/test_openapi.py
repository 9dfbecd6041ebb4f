"""Proves tests/e2e/openapi.py: what discord.py 2.7 sends fits Discord's spec; mistakes do not.

Valid payloads are built by discord.py itself (the same helpers its HTTP layer calls), so a
pass means the bytes our bot would send are accepted by the spec.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jsonschema", reason="jsonschema>=4.18 is needed to check bodies against the spec")

import discord
from discord import app_commands, ui
from discord.http import handle_message_parameters
from discord.webhook.async_ import (
    interaction_message_response_params,
    interaction_response_params,
)

from .openapi import DEFAULT_PATH, DiscordOpenAPI

SPEC = DiscordOpenAPI.load()
if SPEC is None:
    pytest.skip(f"Discord's OpenAPI spec is not at {DEFAULT_PATH}", allow_module_level=True)
assert SPEC is not None  # for type checkers

CALLBACK = "/interactions/1180000000000000000/aW50ZXJhY3Rpb246dG9rZW4.DEF_-/callback?with_response=1"
FOLLOWUP = "/webhooks/1170000000000000000/aW50ZXJhY3Rpb246dG9rZW4.DEF_-"
ORIGINAL = FOLLOWUP + "/messages/@original"
MESSAGES = "/channels/1160000000000000000/messages"
GUILD_COMMANDS = "/applications/1170000000000000000/guilds/1150000000000000000/commands"


# --- payloads, as discord.py builds them ------------------------------------------------------


def embed() -> discord.Embed:
    e = discord.Embed(
        title="Who funded the bridge?",
        description="> The council paid for it in 1998.",
        url="https://example.com/story",
        colour=discord.Colour.blurple(),
        timestamp=discord.utils.utcnow(),
    )
    e.set_author(name="StoryBot")
    e.add_field(name="Source", value="Paragraph 3", inline=False)
    e.set_footer(text="Ask a curator to add more.")
    return e


def view() -> ui.View:
    v = ui.View(timeout=None)
    v.add_item(ui.Button(label="Helpful", custom_id="feedback:up", style=discord.ButtonStyle.success))
    v.add_item(ui.Button(label="Not helpful", custom_id="feedback:down", emoji="👎"))
    v.add_item(ui.Button(label="Read the story", url="https://example.com/story"))
    v.add_item(
        ui.Select(
            custom_id="suggest",
            placeholder="Did you mean…",
            options=[discord.SelectOption(label="Who funded it?", value="who-funded-it")],
        )
    )
    return v


class AddEntry(ui.Modal, title="Add an entry"):
    question = ui.TextInput(label="Question", custom_id="question", max_length=200)
    answer = ui.TextInput(label="Answer", style=discord.TextStyle.paragraph, required=False)
    source = ui.Label(
        text="Source sentence",
        description="Copied verbatim from the article",
        component=ui.TextInput(custom_id="source", placeholder="The council paid…"),
    )


def message_response(type: int, **kwargs: Any) -> dict[str, Any]:
    params = interaction_message_response_params(type=type, **kwargs)
    assert params.payload is not None
    return params.payload


def command_tree() -> app_commands.CommandTree:
    tree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))

    @tree.command(name="ask", description="Ask a question about the story")
    @app_commands.describe(question="What you want to know")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=True)
    async def ask(interaction: discord.Interaction, question: str) -> None: ...

    @ask.autocomplete("question")
    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return []

    kb = app_commands.Group(
        name="kb",
        description="Curate the knowledge base",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )

    @kb.command(name="add", description="Add an entry")
    @app_commands.choices(kind=[app_commands.Choice(name="Fact", value="fact")])
    async def add(
        interaction: discord.Interaction,
        question: str,
        kind: str,
        weight: app_commands.Range[int, 1, 5] = 1,
        shout: bool = False,
    ) -> None: ...

    tree.add_command(kb)

    @tree.context_menu(name="Ask about this")
    async def about(interaction: discord.Interaction, message: discord.Message) -> None: ...

    return tree


def commands_body() -> list[dict[str, Any]]:
    tree = command_tree()
    return [c.to_dict(tree) for c in tree.get_commands()]


# --- valid bodies ------------------------------------------------------------------------------


def ok(method: str, path: str, body: Any) -> None:
    problems = SPEC.errors(method, path, body)
    assert problems == [], "\n".join(problems)


def test_message_callback_from_discord_py_is_valid() -> None:
    body = message_response(
        4,
        content="The council paid for it.",
        embeds=[embed()],
        view=view(),
        allowed_mentions=discord.AllowedMentions.none(),
        flags=discord.MessageFlags(ephemeral=True),
    )
    assert body["data"]["flags"] == 64 and body["data"]["allowed_mentions"] == {"parse": []}
    assert body["data"]["components"][0]["components"][0]["custom_id"] == "feedback:up"
    ok("POST", CALLBACK, body)


def test_modal_callback_from_discord_py_is_valid() -> None:
    data = AddEntry(custom_id="kb:add").to_dict()
    kinds = [c["type"] for c in data["components"]]
    assert kinds == [1, 1, 18]  # two text inputs in action rows, one in a label
    ok("POST", CALLBACK, interaction_response_params(9, data).payload)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(message_response(7, content="Thanks!", embeds=[embed()], view=None), id="update"),
        pytest.param(message_response(7, content="Thanks!", view=view()), id="update-view"),
        pytest.param(interaction_response_params(6).payload, id="deferred-update"),
        pytest.param(interaction_response_params(5, {"flags": 64}).payload, id="deferred-ephemeral"),
        pytest.param(
            interaction_response_params(
                8, {"choices": [app_commands.Choice(name="Who funded it?", value="who").to_dict()]}
            ).payload,
            id="autocomplete",
        ),
    ],
)
def test_other_callbacks_from_discord_py_are_valid(body: dict[str, Any]) -> None:
    ok("POST", CALLBACK, body)


def test_channel_message_from_discord_py_is_valid() -> None:
    reference = discord.MessageReference(
        message_id=1160000000000000001, channel_id=1160000000000000000, guild_id=1150000000000000000
    )
    params = handle_message_parameters(
        content="Did you mean: who funded it?",
        embed=embed(),
        view=view(),
        allowed_mentions=discord.AllowedMentions.none(),
        message_reference=reference.to_message_reference_dict(),
        mention_author=False,
        nonce=123456789,
    )
    assert isinstance(params.payload["message_reference"]["message_id"], int)  # spec quirk 1
    ok("POST", MESSAGES, params.payload)


def test_multipart_payload_json_is_valid() -> None:
    params = handle_message_parameters(
        content="Here is the log.",
        file=discord.File(io.BytesIO(b"log"), "log.txt", description="The log"),
        allowed_mentions=discord.AllowedMentions(users=[discord.Object(1)], everyone=False),
    )
    assert params.payload is None
    payload = json.loads(params.multipart[0]["value"])
    assert payload["attachments"] == [{"id": 0, "filename": "log.txt", "description": "The log"}]
    ok("POST", MESSAGES, payload)


def test_followup_and_original_edit_from_discord_py_are_valid() -> None:
    followup = handle_message_parameters(
        content="Only curators can add entries.",
        flags=discord.MessageFlags(ephemeral=True),
        allowed_mentions=discord.AllowedMentions.none(),
    ).payload
    ok("POST", FOLLOWUP + "?wait=1", followup)
    edit = handle_message_parameters(content="Done.", embeds=[], view=None).payload
    ok("PATCH", ORIGINAL, edit)


def test_command_bulk_overwrite_from_discord_py_is_valid() -> None:
    body = commands_body()
    by_name = {c["name"]: c for c in body}
    assert by_name["ask"]["options"][0] == {
        "type": 3,
        "name": "question",
        "description": "What you want to know",
        "required": True,
        "autocomplete": True,
    }
    assert by_name["kb"]["options"][0]["type"] == 1  # subcommand
    assert by_name["kb"]["default_member_permissions"] == 32  # discord.py sends the integer
    assert by_name["ask"]["contexts"] == [0, 1] and by_name["ask"]["integration_types"] == [0, 1]
    ok("PUT", GUILD_COMMANDS, body)


def test_command_bulk_overwrite_in_documented_form_is_valid() -> None:
    """Discord's reference types default_member_permissions as a string (spec quirk 2)."""
    body = [
        {
            "name": "kb",
            "description": "Curate the knowledge base",
            "default_member_permissions": "32",
            "dm_permission": False,
            "options": [
                {
                    "type": 1,
                    "name": "add",
                    "description": "Add an entry",
                    "options": [
                        {"type": 3, "name": "question", "description": "…", "required": True},
                        {"type": 3, "name": "topic", "description": "…", "autocomplete": True},
                    ],
                }
            ],
        }
    ]
    ok("PUT", GUILD_COMMANDS, body)


# --- invalid bodies ----------------------------------------------------------------------------


def message_data(**data: Any) -> dict[str, Any]:
    return {"type": 4, "data": {"content": "hi", **data}}


def button(**fields: Any) -> dict[str, Any]:
    return message_data(components=[{"type": 1, "components": [{"type": 2, **fields}]}])


def bad(path: str, body: Any, where: str, what: str, method: str = "POST") -> Any:
    return pytest.param(method, path, body, where, what, id=f"{method} {where} {what}")


@pytest.mark.parametrize(
    ("method", "path", "body", "where", "what"),
    [
        bad(CALLBACK, {"type": 4, "data": {"content": 12345}}, "$.data.content", "not of type"),
        bad(CALLBACK, message_data(content="x" * 2001), "$.data.content", "is too long"),
        bad(
            CALLBACK,
            message_data(embeds=[{"title": "x" * 300}]),
            "$.data.embeds[0].title",
            "is too long",
        ),
        bad(
            CALLBACK,
            message_data(allowed_mentions={"parse": ["nobody"]}),
            "$.data.allowed_mentions.parse[0]",
            "'nobody' is not one of ['users', 'roles', 'everyone']",
        ),
        bad(CALLBACK, {"type": 99}, "$.type", "99 is not one of"),
        bad(CALLBACK, {"type": 9, "data": {"title": "t"}}, "$.data", "'custom_id' is a required"),
        bad(CALLBACK, button(custom_id="x"), "$.data.components[0].components[0]", "'style'"),
        bad(CALLBACK, button(style=9), "$.data.components[0].components[0].style", "not one of"),
        bad(CALLBACK, message_data(flags="64"), "$.data.flags", "not of type"),
        bad(CALLBACK, [], "$", "not of type 'object'"),
        bad(MESSAGES, {"message_reference": {}}, "$.message_reference", "'message_id' is a"),
        bad(
            MESSAGES,
            {"message_reference": {"message_id": "abc"}},
            "$.message_reference.message_id",
            "does not match",
        ),
        bad(MESSAGES, {"allowed_mentions": {"users": [-1]}}, "$.allowed_mentions.users[0]", "less"),
        bad(ORIGINAL, {"embeds": [{}] * 11}, "$.embeds", "is too long", method="PATCH"),
        bad(GUILD_COMMANDS, [{"name": ""}], "$[0].name", "should be non-empty", method="PUT"),
        bad(
            GUILD_COMMANDS,
            [{"name": "ask", "options": [{"type": 3, "name": "q"}]}],
            "$[0].options[0]",
            "'description' is a required property",
            method="PUT",
        ),
        bad(
            GUILD_COMMANDS,
            [{"name": "ask", "default_member_permissions": "admin"}],
            "$[0].default_member_permissions",
            "does not match",
            method="PUT",
        ),
        bad(GUILD_COMMANDS, {"name": "ask"}, "$", "not of type 'array', 'null'", method="PUT"),
    ],
)
def test_invalid_bodies_fail_with_path_and_reason(
    method: str, path: str, body: Any, where: str, what: str
) -> None:
    problems = SPEC.errors(method, path, body)
    assert problems, "expected a problem"
    assert any(f": {where}: " in p and what in p for p in problems), "\n".join(problems)


def test_problem_names_route_and_stays_short() -> None:
    [problem] = SPEC.errors("POST", CALLBACK, message_data(embeds=[{"title": "x" * 300}]))
    assert problem.startswith("POST /interactions/{interaction_id}/{interaction_token}/callback: ")
    assert len(problem) < 300 and "(300 characters)" in problem


# --- routing and bookkeeping -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (CALLBACK, "/interactions/{interaction_id}/{interaction_token}/callback"),
        ("/api/v10/applications/@me", "/applications/@me"),
        ("/applications/1170000000000000000", "/applications/{application_id}"),
        (GUILD_COMMANDS, "/applications/{application_id}/guilds/{guild_id}/commands"),
        (ORIGINAL, "/webhooks/{webhook_id}/{webhook_token}/messages/@original"),
        (
            FOLLOWUP + "/messages/1160000000000000001",
            "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
        ),
        (FOLLOWUP + "?wait=true", "/webhooks/{webhook_id}/{webhook_token}"),
        ("/users/@me/channels", "/users/@me/channels"),
        ("/channels/1/messages/bulk-delete", "/channels/{channel_id}/messages/bulk-delete"),
        ("/interactions/1/tok/callbackX", None),
        ("/made/up/route", None),
    ],
)
def test_paths_map_to_templates(path: str, template: str | None) -> None:
    assert SPEC.template_for(path) == template


def test_unchecked_routes_are_recorded_not_errors() -> None:
    spec = DiscordOpenAPI.load()
    assert spec is not None
    assert spec.errors("POST", "/made/up/route?x=1", {"anything": 1}) == []
    assert spec.errors("POST", "/channels/1/typing", {}) == []  # no body schema
    assert spec.errors("GET", "/users/@me", None) == []  # nothing sent, nothing unchecked
    assert spec.unknown_routes == {"POST /made/up/route", "POST /channels/{channel_id}/typing"}


def test_missing_spec_loads_as_none(tmp_path: Path) -> None:
    assert DiscordOpenAPI.load(tmp_path / "absent.json") is None
    assert Path(__file__).resolve().parents[2].parent / "shared" / "discord-openapi.json" == DEFAULT_PATH


def test_validation_takes_milliseconds() -> None:
    body = message_response(
        4,
        content="hi",
        embeds=[embed()],
        view=view(),
        allowed_mentions=discord.AllowedMentions.none(),
    )
    commands = commands_body()
    SPEC.errors("POST", CALLBACK, body)  # compile and warm the validator cache
    SPEC.errors("PUT", GUILD_COMMANDS, commands)
    runs = 50
    start = time.perf_counter()
    for _ in range(runs):
        SPEC.errors("POST", CALLBACK, body)
        SPEC.errors("PUT", GUILD_COMMANDS, commands)
    per_body = (time.perf_counter() - start) / (2 * runs)
    assert per_body < 0.02, f"{per_body * 1000:.1f} ms per body"
