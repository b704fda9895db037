"""Every ```python block of the README runs, as written, against the local broker."""

from __future__ import annotations

import asyncio
import re
import sys
import types
from pathlib import Path

import pytest

from tradecore_eventbus import EVENT_TYPE_TO_PYDANTIC_MODEL

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.kafka
@pytest.mark.parametrize("index", range(len(BLOCKS)))
async def test_readme_example_runs(index: int) -> None:
    # The examples call asyncio.run(), so each runs in a thread with a loop of its own, in a
    # real module (Pydantic resolves annotations through sys.modules).
    code = compile(BLOCKS[index], f"README.md[python block {index}]", "exec")
    module = types.ModuleType(f"readme_example_{index}")
    sys.modules[module.__name__] = module
    registry = dict(EVENT_TYPE_TO_PYDANTIC_MODEL)
    try:
        await asyncio.wait_for(asyncio.to_thread(exec, code, module.__dict__), 120)
    finally:
        del sys.modules[module.__name__]
        EVENT_TYPE_TO_PYDANTIC_MODEL.clear()
        EVENT_TYPE_TO_PYDANTIC_MODEL.update(registry)
