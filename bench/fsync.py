#!/usr/bin/env python3
"""What one small write plus fdatasync costs on this machine's disk, the
figure every replicated write pays at least twice (the leader's log, then a
follower's). Three ways of writing the file, since they differ:

  appended    each write grows the file, so each sync also commits its size
              (RocksDB's write-ahead log: it preallocates with
              FALLOC_FL_KEEP_SIZE, which does not change the size)
  allocated   the file was first given its full size with posix_fallocate
  prewritten  the file was first written in full and synced: the writes
              overwrite data, and the sync flushes data only

    python3 bench/fsync.py [--dir DIR] [--writes 3000] [--size 512] [--rounds 3]

DIR defaults to the current directory: run it on the disk the data dirs use.
"""

import argparse
import os
import time


def per_sync_us(path: str, mode: str, writes: int, size: int) -> float:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        total = writes * size
        if mode == "allocated":
            os.posix_fallocate(fd, 0, total)
            os.fsync(fd)
        elif mode == "prewritten":
            os.write(fd, b"\0" * total)
            os.fsync(fd)
            os.lseek(fd, 0, os.SEEK_SET)
        record = b"x" * size
        start = time.perf_counter()
        for _ in range(writes):
            os.write(fd, record)
            os.fdatasync(fd)
        return (time.perf_counter() - start) / writes * 1e6
    finally:
        os.close(fd)
        os.unlink(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=".")
    p.add_argument("--writes", type=int, default=3000)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    path = os.path.join(a.dir, f".raftcart-fsync-{os.getpid()}")
    modes = ["appended", "allocated", "prewritten"]
    results = {m: [] for m in modes}
    for _ in range(a.rounds):
        for mode in modes:
            results[mode].append(per_sync_us(path, mode, a.writes, a.size))
    print(f"{a.writes} writes of {a.size} bytes, each followed by fdatasync, in {os.path.abspath(a.dir)}:")
    for mode in modes:
        runs = ", ".join(f"{us:.0f}" for us in results[mode])
        print(f"  {mode:<11} {runs} µs per write+sync")


if __name__ == "__main__":
    main()
