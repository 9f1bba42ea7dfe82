"""``python -m e2e.lab.clickhouse.launch LIBCHDB ARGS...``: ``clickhouse local ARGS`` from libchdb.so.

The whole ClickHouse server in one call: ``chdb_query_cmdline(argc, argv)`` runs ClickHouse's
``clickhouse local`` with this command line and returns when its queries end. The lab's queries
start the HTTP and TCP listeners, then run one that never ends, so this process serves until it
is signalled (SIGTERM: ClickHouse shuts down in about 2 s). A process of its own: the library
holds the data path's lock and ClickHouse's global state for as long as the process lives.
"""

from __future__ import annotations

import ctypes
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    library, args = argv[0], [b"clickhouse", *(a.encode() for a in argv[1:])]
    lib = ctypes.CDLL(library)
    lib.chdb_query_cmdline.restype = ctypes.c_void_p
    lib.chdb_query_cmdline.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    lib.chdb_result_error.restype = ctypes.c_char_p
    lib.chdb_result_error.argtypes = [ctypes.c_void_p]
    result = lib.chdb_query_cmdline(len(args), (ctypes.c_char_p * len(args))(*args))
    error = lib.chdb_result_error(result) if result else b"no result"
    # Here only when the never-ending query ended: an error (a port taken, a bad config), or a stop.
    print(f"clickhouse local returned: {(error or b'without an error').decode(errors='replace')}", file=sys.stderr)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
