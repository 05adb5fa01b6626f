#!/usr/bin/env python3
# bench/sched-waits.py: how long the processes of a streaming run waited
# for a CPU, and how much of that wait had a CPU sitting idle, from the
# scheduler tracepoints of `perf record -e sched:sched_switch -e
# sched:sched_wakeup -a` (read with `perf script -F
# comm,pid,tid,cpu,time,event,trace`).
#
#   sched-waits.py STREAMS LABEL=PERF_SCRIPT_FILE...
#
# Prints one Markdown row per file and process (by command name: the
# client, the fake upstream, the gateway's main thread): microseconds
# per stream spent runnable but not running, and the part of it during
# which the CPU it was queued on ran something else while another CPU
# ran nothing. The
# second figure is what placement costs: a woken process queued behind
# a busy one while a core idles (bench/README.md, "Why the first event
# of 16 streams ..."); the rest is waiting for a busy machine, or for an
# idle CPU to wake (on a virtual machine, tens of microseconds).
#
# SPDX-License-Identifier: GPL-3.0-or-later
import collections
import re
import sys

PROCESSES = (("client", "stream-client"), ("upstream", "fake-upstream-b"), ("gateway", "codex-pooler"))
LINE = re.compile(r"\s*(?P<comm>.+?)\s+(?P<pid>-?\d+)/(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+"
                  r"(?P<time>\d+\.\d+):\s+sched:(?P<event>sched_\w+):\s*(?P<trace>.*)")
SWITCH = re.compile(r"prev_comm=(?P<prev_comm>.*?) prev_pid=(?P<prev>\d+) .*?prev_state=(?P<state>\S+)"
                    r" ==> next_comm=(?P<next_comm>.*?) next_pid=(?P<next>\d+)")
WAKEUP = re.compile(r"comm=(?P<comm>.*?) pid=(?P<pid>\d+) .*?target_cpu=(?P<cpu>\d+)")


def waits(path):
    """{name: [waited_us, waited_behind_a_busy_cpu_while_another_idled_us,
    Counter of the command names it waited behind]}."""
    by_comm = dict((comm, name) for name, comm in PROCESSES)
    comm_of = {}          # tid -> command name
    tracked = {}          # tid -> name
    waiting = {}          # tid -> the CPU it is queued on, while runnable and not running
    current = {}          # cpu -> tid running there (0: idle)
    totals = dict((name, [0.0, 0.0, collections.Counter()]) for name, _ in PROCESSES)
    last = None

    for line in open(path, errors="replace"):
        m = LINE.match(line)
        if m is None:
            continue
        t = float(m["time"]) * 1e6
        if last is not None and waiting:
            idle = [cpu for cpu, tid in current.items() if tid == 0]
            for tid, cpu in waiting.items():
                totals[tracked[tid]][0] += t - last
                # Its own CPU busy while another idles (not the wake-up
                # of an idle CPU, where its own shows idle too).
                own = current.get(cpu, 0)
                if own != 0 and any(c != cpu for c in idle):
                    totals[tracked[tid]][1] += t - last
                    totals[tracked[tid]][2][comm_of.get(own, "?")] += t - last
        last = t

        if m["event"] == "sched_wakeup" or m["event"] == "sched_waking":
            w = WAKEUP.match(m["trace"])
            if w is None:
                continue
            tid = int(w["pid"])
            comm_of[tid] = w["comm"]
            if w["comm"] in by_comm and tid not in current.values():
                tracked[tid] = by_comm[w["comm"]]
                waiting[tid] = int(w["cpu"])
        elif m["event"] == "sched_switch":
            s = SWITCH.match(m["trace"])
            if s is None:
                continue
            prev, nxt = int(s["prev"]), int(s["next"])
            comm_of[prev], comm_of[nxt] = s["prev_comm"], s["next_comm"]
            current[int(m["cpu"])] = nxt
            waiting.pop(nxt, None)
            # Preempted (still runnable): it waits from here.
            if prev != 0 and s["state"].startswith("R") and s["prev_comm"] in by_comm:
                tracked[prev] = by_comm[s["prev_comm"]]
                waiting[prev] = int(m["cpu"])
    return totals


def main():
    streams = int(sys.argv[1])
    print("| run | process | waited for a CPU, us per stream | of it queued behind another process while a CPU idled | mostly behind |")
    print("|---|---|---:|---:|---|")
    for arg in sys.argv[2:]:
        label, path = arg.split("=", 1)
        totals = waits(path)
        for name, _ in PROCESSES:
            if label == "direct" and name == "gateway":
                continue
            waited, idle, behind = totals[name]
            top = ", ".join("%s %.0f" % (comm, us / streams) for comm, us in behind.most_common(2) if us >= streams)
            print("| %s | %s | %.0f | %.0f | %s |" % (label, name, waited / streams, idle / streams, top))


if __name__ == "__main__":
    main()
