"""`purse serve`, with the interpreter's garbage collections counted from outside.

`python -m benchmarks.load.gc_recorder PATH serve ...` runs `purse` with the arguments
after PATH, in this process, and writes `gc.get_stats()` (per generation, young first:
collections, collected, uncollectable) as JSON to PATH once a second, replacing the file
whole. The server's `/metrics` has no `python_gc_*` series (it serves a registry of its
own, without prometheus_client's default collectors), and the server is not changed for
the benchmark; this launcher adds one thread that wakes once a second and nothing else.
The soak (`run.py --soak-seconds`) reads the file before and after.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from pathlib import Path

record_interval_seconds = 1.0


def write_stats(path: Path) -> None:
    """The counts now, written beside PATH and renamed onto it (never read half written)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(gc.get_stats()))
    os.replace(partial, path)


def _record(path: Path, stop: threading.Event) -> None:
    while True:
        write_stats(path)
        if stop.wait(record_interval_seconds):
            return


def main(argv: list[str]) -> int:
    from purse.cli import main as purse_main

    path, purse_arguments = Path(argv[0]), argv[1:]
    stop = threading.Event()
    recorder = threading.Thread(target=_record, args=(path, stop), name="gc-stats", daemon=True)
    recorder.start()
    try:
        return purse_main(purse_arguments)
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
