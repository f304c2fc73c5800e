"""The policies, in the order the replay applies them (DESIGN.md principle 5).

Content first (truncate tool results, then compress history: what later calls re-send), then where each call
goes (route), then what the provider's prompt cache and a response cache make of it, then how it is billed
(batch API), and last the budgets, which decide on the money the calls before them cost.
"""

from __future__ import annotations

from types import ModuleType

from . import batching, budget, compression, prompt_cache, response_cache, routing, truncation

STACK: tuple[ModuleType, ...] = (truncation, compression, routing, prompt_cache, response_cache, batching, budget)
BY_NAME: dict[str, ModuleType] = {module.NAME: module for module in STACK}
