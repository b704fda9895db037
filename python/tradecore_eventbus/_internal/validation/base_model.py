"""``BaseEvent``: the Pydantic base of every registered event (the guide's base model)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


def new_event_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


class BaseEvent(BaseModel):
    """Fields every event carries. Subclasses add their own and narrow ``event_type`` with a
    ``Literal``. Unknown fields are kept (``extra="allow"``) so that producers can add
    context without breaking older models."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    event_id: str = Field(default_factory=new_event_id)
    event_type: str
    timestamp: datetime = Field(default_factory=utc_now)
    version: int = 1
