"""Keep pyarrow from importing pandas where nothing uses pandas.

pyarrow's first conversion of Python values (`pa.array(list)`) imports pandas when it can (0.2-0.3 s and about
35 MiB), only to ask whether the values are pandas objects. `skip_pandas_probe` lets pyarrow ask once while pandas
cannot be imported: pyarrow then takes pandas as absent for that question and never asks again, while an explicit
`import pandas` still works and pyarrow's own pandas conversions (`to_pandas`, `from_pandas`) import it then.

What is lost: until one of those conversions runs, `pa.array(series)` does not see a pandas object as one (it reads
it as a sequence). So only a process that makes no pandas objects skips the probe: the parse workers, and the
`costscope` program for an `analyze` without findings (see `launch.pandas_free`).
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder
from typing import Any


def skip_pandas_probe() -> bool:
    """Have pyarrow take pandas as absent for its conversions of Python values; False when pandas is already
    imported (pyarrow uses it then) or pyarrow asked before."""
    if "pandas" in sys.modules:
        return False
    import pyarrow as pa

    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])  # pyarrow's first conversion: it asks for pandas now, and is told there is none
    finally:
        sys.meta_path.remove(blocker)
    return blocker.asked


class _NoPandas(MetaPathFinder):
    def __init__(self) -> None:
        self.asked = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            self.asked = True
            raise ModuleNotFoundError("pandas is not imported here", name=name)
        return None
