#!/usr/bin/env python3
"""Removes superseded builds of this workspace's own crates and tests from a cargo target dir.

Every clone at a new path (CI makes one per run) compiles the workspace's crates, test
binaries and their incremental caches under new hashes; nothing reads the old ones again.
For each workspace target name, the files of the two newest hashes are kept in
`<profile>/deps` and `<profile>/incremental`; older ones go. Registry crates (what makes a
cold build fast) are never touched: only names given on the command line are pruned.

usage: prune-target.py TARGET_DIR NAME...
"""
import os
import shutil
import sys

KEEP = 2


def stem_and_hash(name):
    base = name.split(".", 1)[0]
    if base.startswith("lib"):
        base = base[3:]
    if "-" not in base:
        return None
    stem, h = base.rsplit("-", 1)
    return stem, h


def prune(folder, names):
    if not os.path.isdir(folder):
        return 0
    groups = {}
    for entry in os.listdir(folder):
        sh = stem_and_hash(entry)
        if sh is None or sh[0] not in names:
            continue
        path = os.path.join(folder, entry)
        try:
            mtime = os.lstat(path).st_mtime
        except FileNotFoundError:
            continue
        hashes = groups.setdefault(sh[0], {})
        paths, newest = hashes.get(sh[1], ([], 0.0))
        paths.append(path)
        hashes[sh[1]] = (paths, max(newest, mtime))
    freed = 0
    for hashes in groups.values():
        order = sorted(hashes.values(), key=lambda v: -v[1])
        for paths, _ in order[KEEP:]:
            for path in paths:
                try:
                    if os.path.isdir(path) and not os.path.islink(path):
                        freed += sum(
                            os.path.getsize(os.path.join(d, f))
                            for d, _, fs in os.walk(path)
                            for f in fs
                        )
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        freed += os.lstat(path).st_size
                        os.remove(path)
                except OSError:
                    pass
    return freed


def main():
    target, names = sys.argv[1], {n.replace("-", "_") for n in sys.argv[2:]}
    freed = 0
    for profile in ("release", "debug"):
        for sub in ("deps", "incremental"):
            freed += prune(os.path.join(target, profile, sub), names)
    print(f"{freed / 1e9:.1f} GB of superseded workspace builds removed")


if __name__ == "__main__":
    main()
