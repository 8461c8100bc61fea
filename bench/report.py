"""The report: the table of every phase, the targets of issues 2 and 3 with PASS/MISS, RSS, seeding, streams."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

from loadgen import Result


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_streams(streams: dict[str, Result]) -> None:
    for label, st in streams.items():
        print(f"{label}: {st['opened']}/{st['n']} streams open after {st['open_seconds']:.1f} s ({st['failed']} "
              f"failed, {st['not_open_in_time']} not open in time); server RSS {st['rss_before_kb'] / 1024:.1f} MB "
              f"before, peak {st['rss_open_kb'] / 1024:.1f} MB with them open")
        for sample in st["error_samples"]:
            print(f"    e.g. {sample[:150]}")
    emu = streams.get("emulator")
    if emu:
        ok = emu["opened"] == emu["n"] and emu["rss_open_kb"] < 600 * 1024
        print(f"  {verdict(ok):<5} issue 3: {emu['n']} open streams, RSS < 600 MB (the target is for 5,000)")


def every_result(results: dict[str, Result], extras: dict[str, Any]) -> dict[str, Result]:
    return {**results, **{f"{k} (again)": v for k, v in extras.get("bare_again", {}).items()},
            **{k: v for k, v in extras.items() if k in ("runs", "sse") and v}}


def print_report(args: argparse.Namespace, results: dict[str, Result], extras: dict[str, Any]) -> None:
    again = extras.get("bare_again", {})
    base = {m: sum(r["rps"] for r in (results[f"bare {m}"], again.get(f"bare {m}", results[f"bare {m}"]))) / 2
            for m in ("GET", "POST")}
    w = 133
    print()
    print("=" * w)
    db = "PostgreSQL" if args.database_url else "SQLite (WAL)"
    print(f"Assistants emulator benchmark - {db}, {args.connections} keep-alive connections, {args.warmup:g} s warm-up "
          f"+ {args.duration:g} s per scenario, one uvicorn worker per server")
    print(f"{os.cpu_count()} CPU cores shared by the server under test and the load generator (its own process): "
          "absolute figures include that contention.")
    print("srv CPU = server process CPU (100% = one core); ms/req = server CPU per request (per run for runs); "
          "CPU x = that cost as a multiple of the bare endpoint's;")
    print("pg ms = CPU of the PostgreSQL backends of the benchmark's database per request (SQLite works inside the "
          "server process);")
    print("other = CPU used meanwhile by every other process (the machine is shared with other work)")
    print("-" * w)
    print(f"{'scenario':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>10}{'errors':>7}{'vs bare':>9}{'srv CPU':>9}"
          f"{'ms/req':>8}{'CPU x':>7}{'pg ms':>7}{'other':>7}   target")
    print("-" * w)
    goals = {"message create": 0.35, "message retrieve": 0.50, "message list (1k msgs)": 0.25,
             "message list (100k msgs)": 0.25}
    checks: list[tuple[str, str, str]] = []

    cpu_base = {m: min(results[f"bare {m}"]["srv_ms_per_req"], again.get(f"bare {m}", {}).get("srv_ms_per_req", 1e9))
                for m in ("GET", "POST")}

    def row(name: str, r: Result, ratio_text: str, target: str, method: str = "") -> None:
        times = r["srv_ms_per_req"] / cpu_base[method] if method else float("nan")
        print(f"{name:<30}{fmt(r['rps'], 0):>9}{fmt(r['p50'], 2):>9}{fmt(r['p99'], 2):>10}{r['errors']:>7}"
              f"{ratio_text:>9}{fmt(r['srv_cpu'], 0) + '%':>9}{fmt(r['srv_ms_per_req'], 2):>8}"
              f"{fmt(times, 1):>7}{fmt(r.get('db_ms_per_req') if args.database_url and method else None, 2):>7}"
              f"{fmt(r['other_cpu'], 0) + '%':>7}   {target}")

    for name, r in results.items():
        method = "POST" if name in ("bare POST", "thread create", "message create") else "GET"
        ratio = r["rps"] / base[method] if base[method] else float("nan")
        target = ""
        if name in goals:
            goal = goals[name]
            target = f">= {goal:.0%} of bare {method}: {verdict(ratio >= goal)}"
            checks.append((f"issue 2: {name} >= {goal:.0%} of bare {method}", f"{ratio:.1%}", verdict(ratio >= goal)))
        bare_row = name.startswith("bare")
        row(name, r, "-" if bare_row else f"{ratio:.1%}", target, "" if bare_row else method)
    for name, r in again.items():
        row(name + " (again, at the end)", r, "-", "")
    runs = extras.get("runs")
    if runs:
        ratio = runs["rps"] / base["POST"] if base["POST"] else float("nan")
        row("runs completed (create+poll)", runs, f"{ratio:.1%}", f">= 8% of bare POST: {verdict(ratio >= 0.08)}",
            "POST")
        checks.append(("issue 3: runs/s >= 8% of bare POST", f"{ratio:.1%} ({runs['rps']:.0f} runs/s)",
                       verdict(ratio >= 0.08)))
        print(f"{'':<30}runs: req/s column is runs/s; p50/p99 per whole run; {runs['polls_per_run']:.2f} polls per "
              f"run, {runs['http_rps']:.0f} HTTP req/s; fresh thread per run (pool exhausted: {runs['exhausted']})")
    sse = extras.get("sse")
    if sse:
        print(f"{'first SSE event (sequential)':<30}{'':>9}{fmt(sse['p50'], 2):>9}{fmt(sse['p99'], 2):>10}"
              f"{sse['errors']:>7}{'':>9}{fmt(sse['srv_cpu'], 0) + '%':>9}{fmt(sse['srv_ms_per_req'], 2):>8}"
              f"{'':>7}{fmt(sse.get('db_ms_per_req') if args.database_url else None, 2):>7}"
              f"{fmt(sse['other_cpu'], 0) + '%':>7}   p50 < 5 ms: {verdict(sse['p50'] < 5)}")
        print(f"{'':<30}{sse['count']} streaming runs one after another, fresh thread each; response headers p50 "
              f"{sse['head_p50']:.2f} ms; whole stream p50 {sse['whole_p50']:.2f} ms, p99 {sse['whole_p99']:.2f} ms")
        checks.append(("issue 3: first SSE event p50 < 5 ms", f"{sse['p50']:.2f} ms", verdict(sse["p50"] < 5)))
    print("-" * w)
    writes = {k: results[k]["p99"] for k in ("thread create", "message create") if k in results}
    worst = max(writes.values()) if writes else float("nan")
    checks.append((f"issue 2: write p99 <= 100 ms at {args.connections} clients",
                   ", ".join(f"{k} {v:.1f} ms" for k, v in writes.items()), verdict(worst <= 100)))
    small, big = results.get("message list (1k msgs)"), results.get("message list (100k msgs)")
    if small and big:
        rps_ratio = big["rps"] / small["rps"] if small["rps"] else float("nan")
        p50_ratio = big["p50"] / small["p50"] if small["p50"] else float("nan")
        flat = rps_ratio >= 0.8 and p50_ratio <= 1.25
        checks.append(("issue 2: list flat 1k -> 100k (req/s >= 80%, p50 <= 125%)",
                       f"req/s x{rps_ratio:.2f}, p50 x{p50_ratio:.2f}", verdict(flat)))
    print(f"Targets (ratios against the mean bare figure: GET {base['GET']:,.0f} req/s, "
          f"POST {base['POST']:,.0f} req/s)")
    for name, figure, result in checks:
        print(f"  {result:<5} {name:<62} {figure}")
    disturbed = [k for k, v in every_result(results, extras).items() if v.get("other_cpu", 0) > 25]
    if disturbed:
        print(f"  NOTE  other processes used > 25% of a core during: {', '.join(disturbed)}; req/s and latency of "
              "those phases are lowered by them (the ms/req and CPU x columns are not).")
    print("-" * w)
    rss = extras["rss"]
    print(f"Server RSS: emulator {rss['emulator_start'] / 1024:.1f} MB at start, "
          f"{rss['emulator_end'] / 1024:.1f} MB at the end; bare app {rss['bare_start'] / 1024:.1f} MB at start, "
          f"{rss['bare_end'] / 1024:.1f} MB at the end")
    print(f"Seeding: 1,000 messages through the API in {extras['seed_1k_s']:.1f} s; 99,999 rows through the store "
          f"in {extras['seed_100k_s']:.1f} s")
    if extras.get("streams"):
        print("-" * w)
        print_streams(extras["streams"])
    errors = {k: v["error_samples"] for k, v in every_result(results, extras).items() if v.get("error_samples")}
    if errors:
        print("-" * w)
        print("Error samples:")
        for name, samples in errors.items():
            for sample in samples:
                print(f"  {name}: {sample[:200]}")
    print("=" * w)
