"""Working files: the rows come back as written, dictionaries only where values repeat, no statistics."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import working_files

ROWS = 30_000


def _day() -> pa.Table:
    return pa.table({
        "contact_id": [f"K{i}" for i in range(ROWS)],
        "channel": [("phone", "chat", "email")[i % 3] for i in range(ROWS)],
        "wait_seconds": [i % 600 for i in range(ROWS)],
        "note": [None] * ROWS,
    })


def _dictionary_columns(path) -> set[str]:
    meta = pq.read_metadata(path)
    group = meta.row_group(0)
    return {group.column(i).path_in_schema for i in range(group.num_columns)
            if any("DICTIONARY" in e for e in group.column(i).encodings)}


def test_a_working_file_reads_back_as_written_with_dictionaries_only_where_values_repeat(tmp_path):
    path = working_files.write_table(_day(), tmp_path / "batch.parquet")
    assert pq.read_table(path).equals(_day())
    assert [p.name for p in tmp_path.iterdir()] == ["batch.parquet"]  # written aside, then moved
    assert _dictionary_columns(path) == {"channel", "wait_seconds", "note"}
    group = pq.read_metadata(path).row_group(0)
    assert not any(group.column(i).is_stats_set for i in range(group.num_columns))
    assert group.column(0).compression == "LZ4"


def test_the_writer_chooses_from_its_first_rows_and_keeps_every_batch(tmp_path):
    day = _day()
    with working_files.Writer(tmp_path / "spool.parquet", day.schema, "zstd") as writer:
        writer.write(day.slice(0, 0))
        for batch in day.to_batches(max_chunksize=7_000):
            writer.write(batch)
    assert pq.read_table(tmp_path / "spool.parquet").equals(day)
    assert _dictionary_columns(tmp_path / "spool.parquet") == {"channel", "wait_seconds", "note"}
    assert pq.read_metadata(tmp_path / "spool.parquet").row_group(0).column(0).compression == "ZSTD"


def test_a_writer_given_no_rows_leaves_a_file_of_its_schema(tmp_path):
    with working_files.Writer(tmp_path / "empty.parquet", _day().schema) as writer:
        writer.write(_day().slice(0, 0))
    empty = pq.read_table(tmp_path / "empty.parquet")
    assert empty.num_rows == 0 and empty.schema.equals(_day().schema)
