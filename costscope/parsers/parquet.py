"""The step table as Parquet, written by `costscope analyze --output steps.parquet`."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ..errors import InputError
from ..io import InputFile
from ..schema import conform
from .base import ParseContext

PARQUET_MAGIC = b"PAR1"


class ParquetParser:
    name = "parquet"
    description = "costscope step table in Parquet (written by --output steps.parquet)"
    sniffs_first_lines = True
    """Its sniff reads only the first `base.SNIFF_LINES` lines (see `parsers.detect`)."""

    def sniff(self, prefix: bytes) -> bool:
        return prefix.startswith(PARQUET_MAGIC)

    def parse(self, source: InputFile, ctx: ParseContext, *, forced: bool) -> Iterator[pa.RecordBatch]:
        if source.path is None:
            raise InputError("Parquet cannot be read from stdin", hint="pass the .parquet file path")
        try:
            import pyarrow.parquet as pq  # imported when a Parquet file is read: 10-15 ms

            parquet = pq.ParquetFile(source.path)
            for batch in parquet.iter_batches(batch_size=ctx.batch_rows):
                ctx.records[source.name] += batch.num_rows
                yield from conform(pa.Table.from_batches([batch])).to_batches()
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{source.name}: not a readable Parquet file: {exc}") from exc
        except ValueError as exc:
            raise InputError(f"{source.name}: not a costscope step table: {exc}") from exc
