"""Measures the console with many topics: a broker with N topics of 3
partitions (created with confluent-kafka), then each page's size and
server time (urllib, median of 5) and, in headless chromium, the time until
the page is loaded with its assets (Navigation Timing), cold cache.

Run by scripts/console-bench.sh; prints a markdown table."""

import os
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

TOPICS = int(os.environ.get("CONSOLE_BENCH_TOPICS", "1000"))


def main():
    from confluent_kafka.admin import AdminClient, NewTopic
    b = harness.ConsoleBroker().start()
    try:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        names = [f"bench-{i:04d}" for i in range(TOPICS)]
        for i in range(0, TOPICS, 100):
            fs = admin.create_topics([NewTopic(n, 3, 1) for n in names[i:i + 100]])
            for f in fs.values():
                f.result(60)
        harness.produce(b.bootstrap, names[0], [(0, b"k", b'{"a": 1}', None)] * 10)
        pages = ["/", "/topics", f"/topics?page={TOPICS // 100}", f"/topics/{names[0]}",
                 f"/topics/{names[0]}?from=latest&partition=all", "/groups", "/brokers"]
        rows = []
        d = harness.browser()
        try:
            for p in pages:
                times, size = [], 0
                for _ in range(5):
                    t0 = time.perf_counter()
                    with urllib.request.urlopen(b.url + p, timeout=30) as r:
                        size = len(r.read())
                    times.append(time.perf_counter() - t0)
                d.execute_cdp_cmd("Network.clearBrowserCache", {})
                d.get(b.url + p)
                nav = d.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0];"
                    "return [n.domContentLoadedEventEnd, n.loadEventEnd,"
                    " performance.getEntriesByType('resource')"
                    ".reduce((s, r) => s + r.transferSize, 0) + n.transferSize];")
                rows.append((p, size, statistics.median(times) * 1000, nav[0], nav[1], nav[2]))
        finally:
            d.quit()
        print(f"{TOPICS} topics x 3 partitions, debug build, this machine\n")
        print("| page | HTML bytes | server ms (median of 5) | DOMContentLoaded ms | load ms | bytes transferred with assets |")
        print("|---|---:|---:|---:|---:|---:|")
        for p, size, ms, dcl, load, total in rows:
            print(f"| `{p}` | {size:,} | {ms:.1f} | {dcl:.0f} | {load:.0f} | {total:,} |")
    finally:
        b.stop()


if __name__ == "__main__":
    main()
