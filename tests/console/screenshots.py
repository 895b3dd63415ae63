"""Takes the screenshots of docs/console/: a broker with actions enabled,
a few topics, a producer and a consumer group at work for half a minute
(so the charts have history), then every page in headless chromium.

Run by scripts/console-screenshots.sh (OXKA_BIN, output dir as argv[1])."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

WARMUP_S = float(os.environ.get("CONSOLE_SCREENSHOT_WARMUP_S", "30"))


def main(out):
    os.makedirs(out, exist_ok=True)
    b = harness.ConsoleBroker(actions=True).start()
    stop = threading.Event()
    try:
        for name, parts in (("orders", 6), ("payments", 3), ("audit-log", 1)):
            harness.create_topic(b.bootstrap, name, partitions=parts)
        threads = [threading.Thread(target=producer, args=(b.bootstrap, stop)),
                   threading.Thread(target=consumer, args=(b.bootstrap, stop))]
        for t in threads:
            t.start()
        time.sleep(WARMUP_S)
        d = harness.browser(1280, 860)
        try:
            pages = [
                ("overview", "/"),
                ("topics", "/topics"),
                ("topic", "/topics/orders?partition=all&from=latest&limit=6"),
                ("groups", "/groups"),
                ("group", "/groups/billing"),
                ("brokers", "/brokers"),
                ("broker", "/brokers/1"),
            ]
            for name, path in pages:
                d.get(b.url + path)
                charts = d.find_elements("css selector", "[data-chart]")
                for c in charts:
                    harness.wait_for(lambda: c.get_attribute("data-ready") == "1",
                                     what=f"chart on {path}")
                d.save_screenshot(os.path.join(out, f"{name}.png"))
                print(f"{out}/{name}.png")
                if name == "topic":
                    d.execute_script(
                        "document.querySelector('form.browse').scrollIntoView()")
                    d.save_screenshot(os.path.join(out, "topic-messages.png"))
                    print(f"{out}/topic-messages.png")
        finally:
            d.quit()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
        b.stop()


def producer(bootstrap, stop):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    i = 0
    while not stop.is_set():
        # a varying rate, so the throughput chart has a shape
        burst = 50 + int(40 * abs(((i // 200) % 10) - 5))
        for _ in range(burst):
            order = {"id": i, "customer": f"c-{i % 97}", "total": round(i * 1.37 % 500, 2),
                     "items": [{"sku": f"sku-{i % 13}", "qty": 1 + i % 3}]}
            p.produce("orders", key=f"c-{i % 97}".encode(), value=json.dumps(order).encode(),
                      headers=[("trace-id", f"{i:08x}".encode()), ("source", b"web")])
            if i % 3 == 0:
                p.produce("payments", key=str(i).encode(), value=f"paid {i}".encode())
            i += 1
        p.poll(0)
        time.sleep(0.2)
    p.flush(10)


def consumer(bootstrap, stop):
    """A group that keeps up with part of the load, so it lags."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "client.id": "billing-1"})
    c.subscribe(["orders", "payments"])
    while not stop.is_set():
        msgs = c.consume(num_messages=60, timeout=0.5)
        if msgs:
            c.commit(asynchronous=False)
        time.sleep(0.3)
    c.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(harness.ROOT, "docs", "console"))
