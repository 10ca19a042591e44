import numpy as np

from snowcoder_train.data import PackedSequences
from tests.train.conftest import SEQ_LEN, write_index


def test_repeat_zero_reads_the_index_order_across_shards(tmp_path):
    index = write_index(tmp_path / "packed", num_sequences=10, shards=3)
    data = PackedSequences(index, "phase1", seed=0)
    expected = np.concatenate(
        [np.fromfile(tmp_path / "packed" / f"shard-{i:05d}.bin", np.uint16) for i in range(3)]
    ).reshape(10, SEQ_LEN)
    assert data.batch(0, 10).dtype == np.int64
    assert np.array_equal(data.batch(0, 10), expected)
    assert np.array_equal(data.batch(3, 4), expected[3:7])


def test_later_repeats_are_seeded_permutations(tmp_path):
    index = write_index(tmp_path / "packed", num_sequences=10, dtype="uint32")
    data = PackedSequences(index, "phase2", seed=0)
    ids = data.sequence_ids(0, 40)  # four repeats
    assert list(ids[:10]) == list(range(10))
    for repeat in range(4):
        assert sorted(ids[repeat * 10 : (repeat + 1) * 10]) == list(range(10))
    assert list(ids[10:20]) != list(range(10))
    assert list(ids[10:20]) != list(ids[20:30])
    again = PackedSequences(index, "phase2", seed=0).sequence_ids(15, 10)  # across a boundary
    assert list(again) == list(ids[15:25])
    other = PackedSequences(index, "phase2", seed=1).sequence_ids(10, 10)
    assert list(other) != list(ids[10:20])
