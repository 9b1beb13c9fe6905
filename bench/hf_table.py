#!/usr/bin/env python3
"""Markdown table from hyperfine JSON exports (used by bench/run-start.sh).

Usage: hf_table.py BASELINE_LABEL ROW...
  ROW is  LABEL|COMMAND|FILE.json   for a measured command, or
          LABEL|COMMAND|!MESSAGE    for one that failed its trial run.
Columns: tool, median ms, ratio of medians to BASELINE_LABEL, mean +- sd, min, command.
"""
import json
import statistics
import sys


def main():
    base_label, rows = sys.argv[1], [r.split("|", 2) for r in sys.argv[2:]]
    stats = {}
    for label, _, src in rows:
        if src.startswith("!"):
            continue
        times = json.load(open(src))["results"][0]["times"]
        stats[label] = (statistics.median(times) * 1e3, statistics.mean(times) * 1e3,
                        (statistics.stdev(times) if len(times) > 1 else 0) * 1e3,
                        min(times) * 1e3, len(times))
    base = stats.get(base_label, (None,))[0]
    print("| tool | median ms | ratio to runc | mean ± sd ms | min ms | runs | command |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, cmd, src in rows:
        if label not in stats:
            print(f"| {label} | failed | | | | | `{cmd}`: {src[1:]} |")
            continue
        med, mean, sd, mn, n = stats[label]
        ratio = f"{med / base:.2f}" if base else "n/a"
        print(f"| {label} | {med:.1f} | {ratio} | {mean:.1f} ± {sd:.1f} | {mn:.1f} | {n} | `{cmd}` |")


if __name__ == "__main__":
    main()
