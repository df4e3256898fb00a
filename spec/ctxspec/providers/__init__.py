"""Each provider's acceptance rules, over its own request payload.

What this package owns: for each provider, the histories it answers with a
400 and the error text it answers with (:class:`~.base.ProviderRule`, one
table per provider module).  What it must not know: how a payload is made
from canonical messages (the renderers are ``ctxref.render``) or read back.

``check REQUEST --provider P`` and the ``reject`` level under ``--provider``
come from here; ``docs/providers.md`` is the table of every rule, its error,
its source and whether the error text is verified or inferred.
"""

from __future__ import annotations

from typing import Final

from . import anthropic, openai
from . import deepseek, mistral, moonshot
from . import gemini
from . import openai_responses
from .base import Evidence, Payload, Provider, ProviderRule, Rejection

#: Every provider, by the name ``--provider`` takes.
PROVIDERS: Final[dict[str, Provider]] = {
    p.name: p
    for p in (
        openai.PROVIDER,
        anthropic.PROVIDER,
        deepseek.PROVIDER,
        moonshot.PROVIDER,
        mistral.PROVIDER,
        gemini.PROVIDER,
        openai_responses.PROVIDER,
    )
}


def provider(name: str) -> Provider:
    """The provider called ``name``; ``KeyError`` names the known ones."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise KeyError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})") from None


__all__ = ["PROVIDERS", "Evidence", "Payload", "Provider", "ProviderRule", "Rejection", "provider"]
