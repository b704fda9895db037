"""Shared fixtures. Tests marked ``kafka`` talk to the real broker that ``make test`` starts
(``scripts/kafka/broker.sh``); when it does not answer they fail, they are never skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tradecore_eventbus import _core
from tradecore_eventbus.event_registry import EVENT_TYPE_TO_PYDANTIC_MODEL

BOOTSTRAP = os.environ.get("TRADECORE_TEST_BOOTSTRAP", "127.0.0.1:19092")

# The public pytest plugin, as a user gets it (tests/plugin_usage/). An installed package
# registers it through its pytest11 entry point; a tree used from source (PYTHONPATH=python
# over an older install) has no such entry point, so it is loaded here, and only then:
# pytest refuses a plugin registered twice. Here, not in tests/plugin_usage/conftest.py:
# pytest only takes `pytest_plugins` from top-level conftest files.
PLUGIN = "tradecore_eventbus.testing"
if not any(ep.value == PLUGIN for ep in entry_points(group="pytest11")):
    pytest_plugins = [PLUGIN]


@pytest.fixture(autouse=True, scope="session")
def isolated_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default spool is the per-user state directory (``$XDG_STATE_HOME``): point it at a
    temporary directory for the whole run, child processes included, so that no test writes
    into the real ``~/.local/state``. Tests that need a spool of their own still pass one."""
    state = tmp_path_factory.mktemp("xdg-state")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("XDG_STATE_HOME", str(state))
        yield state


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def isolated_event_registry() -> Iterator[None]:
    """Each test sees the registry as it was before it (tests and the demo register models)."""
    saved = dict(EVENT_TYPE_TO_PYDANTIC_MODEL)
    yield
    EVENT_TYPE_TO_PYDANTIC_MODEL.clear()
    EVENT_TYPE_TO_PYDANTIC_MODEL.update(saved)


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return BOOTSTRAP


@pytest.fixture(scope="session")
async def admin(bootstrap: str) -> _core.Admin:
    client = _core.Admin(bootstrap)
    try:
        await client.ping(10.0)
    except Exception as exc:  # pragma: no cover - explains a missing broker
        pytest.fail(
            f"the Kafka broker at {bootstrap} does not answer ({exc}); run `make broker-start`"
        )
    return client


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(admin: _core.Admin) -> AsyncIterator[TopicFactory]:
    async def make(partitions: int = 1, prefix: str = "test") -> str:
        name = unique(prefix)
        await admin.create_topics([(name, partitions, 1, None)])
        return name

    return make


PG_URL = os.environ.get("TRADECORE_PG_URL", "postgresql://postgres@127.0.0.1:25432/eventbus_test")


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A schema of its own for each PostgreSQL test, dropped afterwards."""
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} does not answer ({exc}); run `make pg-start`")
    await conn.execute(f"CREATE SCHEMA {schema}")
    yield schema
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


async def make_pool(schema: str, size: int = 10) -> Any:
    import asyncpg

    return await asyncpg.create_pool(
        PG_URL, min_size=1, max_size=size, server_settings={"search_path": schema}
    )


@pytest.fixture
async def pg_pool(pg_schema: str) -> AsyncIterator[Any]:
    pool = await make_pool(pg_schema, 20)
    yield pool
    await pool.close()
