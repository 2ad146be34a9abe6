"""Chunk validation, interpolation, coverage and joint reordering."""

import math

import numpy as np
import pytest

from vla_ros.control.chunk import ChunkError, make_chunk, reorder

MS = 1_000_000


def _chunk(actions, names=("a", "b"), stamp=1_000 * MS, dt=10 * MS, **kw):
    return make_chunk(stamp_ns=stamp, dt_ns=dt, joint_names=names, actions=actions, **kw)


def test_flat_actions_are_row_major():
    c = _chunk([0, 1, 2, 3, 4, 5], horizon=3, action_dim=2)
    assert c.actions.shape == (3, 2)
    assert c.actions[1].tolist() == [2.0, 3.0]
    assert c.end_ns == c.start_ns + 2 * c.dt_ns + 1  # covers up to its last action, inclusive
    assert c.span_ns == 2 * c.dt_ns


def test_sample_exact_at_points_and_linear_between():
    c = _chunk([[0.0, 10.0], [1.0, 20.0], [3.0, 40.0]])
    t0 = c.start_ns
    assert c.sample(t0 + 10 * MS).tobytes() == c.actions[1].tobytes()  # bit-exact at a point
    mid = c.sample(t0 + 15 * MS)
    np.testing.assert_allclose(mid, [2.0, 30.0])
    q = c.sample(t0 + 2_500_000)
    np.testing.assert_allclose(q, [0.25, 12.5])


def test_coverage_ends_at_the_last_action():
    c = _chunk([[0.0, 0.0], [1.0, 1.0]])
    assert c.sample(c.start_ns - 1) is None
    assert c.covers(c.start_ns)
    np.testing.assert_array_equal(c.sample(c.start_ns + 10 * MS), [1.0, 1.0])
    assert c.covers(c.start_ns + 10 * MS)
    assert c.sample(c.start_ns + 10 * MS + 1) is None  # nothing past the last action
    assert not c.covers(c.end_ns) and c.end_ns == c.start_ns + 10 * MS + 1


def test_one_action_chunk_is_held_for_one_dt():
    c = _chunk([[0.5, 0.5]])
    np.testing.assert_array_equal(c.sample(c.start_ns + 9 * MS), [0.5, 0.5])
    assert c.sample(c.start_ns + 10 * MS) is None and c.end_ns == c.start_ns + 10 * MS


def test_time_offset_shifts_start_not_stamp():
    c = _chunk([[0.0, 0.0]], time_offset_ns=7)
    assert c.start_ns == c.stamp_ns + 7


@pytest.mark.parametrize(
    ("kwargs", "cause", "text"),
    [
        ({"actions": [[0, math.nan]]}, "chunk_nonfinite", "non-finite"),
        ({"actions": [[0, math.inf]]}, "chunk_nonfinite", "'b'"),
        ({"actions": [0, 1, 2]}, "chunk_shape", "multiple of action_dim=2"),
        ({"actions": [[0, 1]], "horizon": 2}, "chunk_shape", "horizon=2"),
        ({"actions": [[0, 1]], "action_dim": 3}, "chunk_shape", "action_dim=3"),
        ({"actions": np.zeros((0, 2))}, "chunk_shape", "horizon 0"),
        ({"actions": [[0, 1]], "dt": 0}, "chunk_dt", "dt must be > 0"),
        ({"actions": [[0, 1]], "names": ("a", "a")}, "chunk_joints", "duplicates"),
    ],
)
def test_bad_chunks_raise_with_cause(kwargs, cause, text):
    with pytest.raises(ChunkError, match=text) as info:
        _chunk(**kwargs)
    assert info.value.cause == cause


def test_reorder_by_name():
    c = _chunk([[1.0, 2.0], [3.0, 4.0]], names=("b", "a"))
    r = reorder(c, ("a", "b"))
    assert r.joint_names == ("a", "b")
    np.testing.assert_array_equal(r.actions, [[2.0, 1.0], [4.0, 3.0]])


@pytest.mark.parametrize("names", [("a", "x"), ("a",), ("a", "b", "c")])
def test_reorder_rejects_other_joints(names):
    c = _chunk(np.zeros((1, len(names))), names=names)
    with pytest.raises(ChunkError, match="do not match") as info:
        reorder(c, ("a", "b"))
    assert info.value.cause == "chunk_joints"


def test_sample_stack_equals_per_chunk_sample_bit_for_bit():
    from vla_ros.control.chunk import sample_stack

    rng = np.random.default_rng(3)
    chunks = [
        _chunk(rng.normal(size=(h, 2)), stamp=s, dt=d)
        for h, s, d in [(5, 0, 10), (7, 3, 4), (3, 6, 7), (9, 1, 3)]
    ]
    for t in range(6, 21):
        live = [c for c in chunks if c.covers(t)]
        if not live:
            continue
        got = sample_stack(live, t)
        want = np.stack([c.sample(t) for c in live])
        assert got.tobytes() == want.tobytes()
