"""Renderers: canonical messages to each provider's request payload.

What this package owns: how the reference sends a message list to each
provider of :data:`ctxspec.providers.PROVIDERS`, including what a provider
needs that the message list does not say (an id in the provider's character
set, an assistant turn between tool results and a user message where the
provider wants one).  Each such adaptation is stated in the provider's
renderer module and in ``docs/providers.md``; none changes what the model is
told.  The renderers are the reference's; ``MUTANTS`` holds, per provider
rule, a renderer that breaks that rule, so the rules are shown to bite.

What it must not know: a provider's rules (``ctxspec.providers`` judges what
a renderer made).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ctxspec.messages import Message

from . import anthropic, chat
from . import gemini
from . import responses
from .base import MutantRenderer, Options, Renderer

#: The reference renderer of each provider, by provider name.
RENDERERS: Final[dict[str, Renderer]] = {
    **chat.RENDERERS,
    "anthropic": anthropic.render,
    "gemini": gemini.render,
    "openai-responses": responses.render,
}

#: For each provider rule, a renderer that breaks it (name -> mutant).
MUTANTS: Final[dict[str, MutantRenderer]] = {m.name: m for m in (*chat.MUTANTS, *anthropic.MUTANTS, *gemini.MUTANTS, *responses.MUTANTS)}


def render(messages: Sequence[Message], provider: str, *, model: str | None = None, thinking: bool = False) -> dict[str, object]:
    """The request body the reference sends ``provider`` for ``messages``.

    ``thinking`` renders the provider's thinking mode: the reasoning each
    assistant message carries goes where the provider wants it back.  Raises
    ``KeyError`` for an unknown provider.
    """
    return RENDERERS[provider](messages, Options(model=model, thinking=thinking))


__all__ = ["MUTANTS", "RENDERERS", "MutantRenderer", "Options", "Renderer", "render"]
