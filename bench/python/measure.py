"""Run a command; print its wall time and memory as one JSON line.

    python3 measure.py [--interval SECONDS] -- COMMAND...

The memory figures:
  rusage_children_maxrss_mb  getrusage(RUSAGE_CHILDREN).ru_maxrss: what
                             `/usr/bin/time -v` reports. It only covers
                             processes that were waited for, so it misses
                             tasks forked by the fork server (which leaves
                             its children to be reaped by the kernel).
  peak_process_rss_mb        the largest RSS of any one process of the
                             command's process tree, sampled from /proc.
  peak_tree_rss_mb           the largest sum of the RSS of all the
                             processes of the tree at one time (pages that
                             processes share are counted once per process,
                             so this over-counts).
  peak_tree_pss_mb           the same with PSS (/proc/PID/smaps_rollup):
                             shared pages divided among the processes that
                             map them, so the sum is the memory the whole
                             run used (null where smaps_rollup is missing).
"""
import json
import os
import resource
import subprocess
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(root):
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d, "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _rss(pid):
    try:
        with open("/proc/%d/statm" % pid, "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid, "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return None


def main(argv):
    interval = 0.005
    if argv[:1] == ["--interval"]:
        interval = float(argv[1])
        argv = argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    peak = {"process": 0, "tree": 0, "pss": 0}
    has_pss = os.path.exists("/proc/self/smaps_rollup")
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)

    def sample():
        while not done.is_set():
            pids = _tree(proc.pid)
            sizes = [_rss(p) for p in pids]
            if sizes:
                peak["process"] = max(peak["process"], max(sizes))
                peak["tree"] = max(peak["tree"], sum(sizes))
            if has_pss:
                peak["pss"] = max(peak["pss"], sum(_pss(p) or 0 for p in pids))
            done.wait(interval)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rc = proc.wait()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    mb = 1 << 20
    print(json.dumps({"rc": rc, "wall_s": round(wall, 4),
                      "rusage_children_maxrss_mb": round(ru.ru_maxrss * 1024 / mb, 1),
                      "peak_process_rss_mb": round(peak["process"] / mb, 1),
                      "peak_tree_rss_mb": round(peak["tree"] / mb, 1),
                      "peak_tree_pss_mb": round(peak["pss"] / mb, 1) if has_pss else None}))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
