"""Writing a result file: the size cap holds to the byte and stops reading early, a failed
write leaves no file behind and names the folder and the system's reason, and an engine's
error is never mistaken for the disk's."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from assay.errors import ResultsUnwritable, ResultTooLarge
from assay.results.arrow import read_table, write_stream
from tests.results.mounts import read_only, tiny_disk

SCHEMA = pa.schema([pa.field("n", pa.int64()), pa.field("s", pa.string())])


def batches(count: int | None, pulled: list[int] | None = None) -> Iterator[pa.RecordBatch]:
    """``count`` batches of 1,000 rows (endless with None), counting those handed out."""
    i = 0
    while count is None or i < count:
        if pulled is not None:
            pulled.append(i)
        n = pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())
        yield pa.RecordBatch.from_arrays([n, pa.array([f"row {v}" for v in n.to_pylist()])],
                                         schema=SCHEMA)  # fmt: skip
        i += 1


def reader(source: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(SCHEMA, source)


def test_the_cap_holds_to_the_byte(tmp_path: Path) -> None:
    whole = write_stream(reader(batches(5)), tmp_path / "whole.arrows", ["n", "s"], None)
    assert whole.rows == 5000 and whole.bytes == (tmp_path / "whole.arrows").stat().st_size

    exact = write_stream(reader(batches(5)), tmp_path / "exact.arrows", ["n", "s"], None,
                         max_bytes=whole.bytes)  # fmt: skip
    assert (exact.rows, exact.bytes) == (5000, whole.bytes)
    assert read_table(tmp_path / "exact.arrows").num_rows == 5000

    with pytest.raises(ResultTooLarge) as caught:
        write_stream(reader(batches(5)), tmp_path / "over.arrows", ["n", "s"], None,
                     max_bytes=whole.bytes - 1)  # fmt: skip
    assert caught.value.message == (
        f"The result is larger than max_result_bytes ({whole.bytes - 1} bytes): add a limit "
        "or filters, or raise the setting"
    )
    assert (caught.value.code, caught.value.error_type) == ("result_too_large", "QUERY")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exact.arrows", "whole.arrows"]


def test_the_cap_stops_reading_an_endless_result(tmp_path: Path) -> None:
    pulled: list[int] = []
    with pytest.raises(ResultTooLarge):
        write_stream(reader(batches(None, pulled)), tmp_path / "r.arrows", ["n", "s"], None,
                     max_bytes=100_000)  # fmt: skip
    assert 1 <= len(pulled) <= 10  # a batch is about 17 KB: it stopped at the cap
    assert list(tmp_path.iterdir()) == []


def test_the_row_limit_still_wins_under_the_cap(tmp_path: Path) -> None:
    written = write_stream(reader(batches(None)), tmp_path / "r.arrows", ["n", "s"], 2500,
                           max_bytes=1_000_000)  # fmt: skip
    assert (written.rows, written.limit_reached) == (2500, True)


def test_a_removed_folder_fails_naming_it_and_the_reason(tmp_path: Path) -> None:
    folder = tmp_path / "results"  # never made: as if removed while the server ran
    with pytest.raises(ResultsUnwritable) as caught:
        write_stream(reader(batches(2)), folder / "r.arrows", ["n", "s"], None)
    message = caught.value.message
    assert f"results folder {folder}: No such file or directory." in message
    assert "create it again" in message
    assert (caught.value.code, caught.value.error_type) == ("results_unwritable", "INTERNAL")
    assert not folder.exists()


def test_an_engine_error_passes_through_unchanged(tmp_path: Path) -> None:
    """An engine reader may raise OSError (Arrow's I/O errors are OSErrors): it is the
    engine's failure, not the results folder's, and must not be reported as a full disk."""

    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches(2)
        raise OSError(errno.ECONNRESET, "the database connection was reset")

    with pytest.raises(OSError) as caught:
        write_stream(reader(failing()), tmp_path / "r.arrows", ["n", "s"], None)
    assert not isinstance(caught.value, ResultsUnwritable)
    assert "connection was reset" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


def test_a_full_disk_fails_naming_the_folder_and_leaves_nothing(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "64k") as disk:
        with pytest.raises(ResultsUnwritable) as caught:
            write_stream(reader(batches(20)), disk / "r.arrows", ["n", "s"], None)
        assert f"results folder {disk}: No space left on device." in caught.value.message
        assert "free space" in caught.value.message
        assert list(disk.iterdir()) == []  # the partial file was removed: the space is back
        small = write_stream(reader(batches(1)), disk / "small.arrows", ["n", "s"], None)
        assert small.rows == 1000


def test_a_read_only_folder_fails_naming_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "results"
    with read_only(folder) as mount:
        with pytest.raises(ResultsUnwritable) as caught:
            write_stream(reader(batches(2)), folder / "r.arrows", ["n", "s"], None)
        assert f"results folder {folder}: Read-only file system." in caught.value.message
        assert "mount it read-write" in caught.value.message
        mount.writable()
        assert write_stream(reader(batches(2)), folder / "r.arrows", ["n", "s"], None).rows == 2000


def test_a_large_result_is_compressed_and_a_small_one_left_alone(tmp_path: Path) -> None:
    plain = write_stream(reader(batches(30)), tmp_path / "plain.arrows", ["n", "s"], None)
    packed = write_stream(reader(batches(30)), tmp_path / "zstd.arrows", ["n", "s"], None,
                          compression="zstd")  # fmt: skip
    lz4 = write_stream(reader(batches(30)), tmp_path / "lz4.arrows", ["n", "s"], None,
                       compression="lz4")  # fmt: skip
    assert packed.rows == lz4.rows == plain.rows == 30_000
    assert packed.bytes < plain.bytes / 3 and lz4.bytes < plain.bytes * 0.7
    whole = read_table(tmp_path / "plain.arrows")
    assert read_table(tmp_path / "zstd.arrows").equals(whole)
    assert read_table(tmp_path / "lz4.arrows").equals(whole)
    # one small batch: written as it is, byte for byte
    small = write_stream(reader(batches(1)), tmp_path / "small.arrows", ["n", "s"], None,
                         compression="zstd")  # fmt: skip
    write_stream(reader(batches(1)), tmp_path / "small-plain.arrows", ["n", "s"], None)
    assert small.rows == 1000
    assert (tmp_path / "small.arrows").read_bytes() == (
        tmp_path / "small-plain.arrows"
    ).read_bytes()


def test_the_cap_counts_a_compressed_results_arrow_bytes(tmp_path: Path) -> None:
    """What a reader holds once it has read the result, not the smaller file."""
    plain = write_stream(reader(batches(5)), tmp_path / "plain.arrows", ["n", "s"], None)
    fits = write_stream(reader(batches(5)), tmp_path / "fits.arrows", ["n", "s"], None,
                        max_bytes=plain.bytes, compression="zstd")  # fmt: skip
    assert fits.rows == 5000 and fits.bytes < plain.bytes
    with pytest.raises(ResultTooLarge):
        write_stream(reader(batches(5)), tmp_path / "over.arrows", ["n", "s"], None,
                     max_bytes=plain.bytes - 1, compression="zstd")  # fmt: skip
    assert not (tmp_path / "over.arrows").exists()
