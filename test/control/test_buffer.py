"""ChunkBuffer ordering, replacement, capacity, pruning and max age."""

import numpy as np
import pytest

from vla_ros.control.buffer import ChunkBuffer
from vla_ros.control.chunk import make_chunk


def _c(stamp, horizon=4, dt=10, pid="p", value=0.0):
    return make_chunk(
        stamp_ns=stamp,
        dt_ns=dt,
        joint_names=("j",),
        actions=np.full((horizon, 1), value),
        policy_id=pid,
    )


def test_sorted_oldest_first_even_out_of_order():
    b = ChunkBuffer()
    for s in (30, 10, 20):
        b.add(_c(s))
    assert [c.stamp_ns for c in b.chunks] == [10, 20, 30]
    assert b.newest().stamp_ns == 30


def test_same_policy_and_stamp_replaces():
    b = ChunkBuffer()
    b.add(_c(10, value=1.0))
    stored, dropped = b.add(_c(10, value=2.0))
    assert len(b) == 1 and not dropped
    assert b.chunks[0] is stored and stored.actions[0, 0] == 2.0
    b.add(_c(10, pid="other"))
    assert len(b) == 2


def test_capacity_drops_oldest():
    b = ChunkBuffer(max_chunks=3)
    dropped_total = []
    for s in range(10):
        _, dropped = b.add(_c(s))
        dropped_total += dropped
    assert [c.stamp_ns for c in b.chunks] == [7, 8, 9]
    assert [c.stamp_ns for c in dropped_total] == list(range(7))


def test_live_and_prune():
    b = ChunkBuffer()
    b.add(_c(0, horizon=3, dt=10))  # covers [0, 20]: up to its last action, not past it
    b.add(_c(15, horizon=2, dt=10))  # covers [15, 25]
    assert [c.stamp_ns for c in b.live(5)] == [0]
    assert [c.stamp_ns for c in b.live(20)] == [0, 15]
    assert b.prune(21) == 1
    assert [c.stamp_ns for c in b.live(21)] == [15]


def test_max_age_limits_liveness():
    b = ChunkBuffer(max_age_ns=10)
    b.add(_c(0, horizon=10, dt=10))
    assert b.live(10) and not b.live(11)
    assert b.prune(11) == 1


@pytest.mark.parametrize(("kw", "msg"), [({"max_chunks": 0}, "max_chunks"), ({"max_age_ns": -1}, "max_age")])
def test_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        ChunkBuffer(**kw)
