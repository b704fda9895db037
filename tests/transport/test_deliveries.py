"""What `send_encoded` returns: (partition, offset) per event, as a read-only sequence kept
in Rust, that reads like the list of tuples the other producers return."""

from __future__ import annotations

import pytest
from tests.conftest import TopicFactory

from tradecore_eventbus import _core

pytestmark = pytest.mark.kafka


async def test_deliveries_of_an_encoded_batch_read_like_a_list_of_tuples(
    bootstrap: str, new_topic: TopicFactory
) -> None:
    topic = await new_topic(partitions=1)
    producer = _core.Producer(bootstrap)
    events = [{"event_type": "Tick", "n": i} for i in range(5)]
    batch, problems = _core.encode_events(events, None, str)
    assert problems == []
    deliveries = await producer.send_encoded(topic, batch)
    await producer.close()

    as_list = list(deliveries)
    assert len(deliveries) == 5
    assert all(p == 0 for p, _ in as_list)
    offsets = [o for _, o in as_list]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == 5
    assert deliveries[0] == as_list[0]
    assert deliveries[-1] == as_list[4]
    assert deliveries[1:3] == as_list[1:3]
    assert deliveries == as_list
    assert deliveries != as_list[:4]
    assert deliveries != "not a sequence of deliveries"
    with pytest.raises(IndexError):
        deliveries[5]
    with pytest.raises(IndexError):
        deliveries[-6]
    assert repr(deliveries) == f"Deliveries({as_list!r})"

    # publish_results reads them directly, and the same from a plain list.
    direct = _core.publish_results("c", topic, None, batch, deliveries)
    via_list = _core.publish_results("c", topic, None, batch, as_list)
    assert direct == via_list
    assert [(r.partition, r.offset) for r in direct] == as_list
    assert [r.event_type for r in direct] == ["Tick"] * 5
