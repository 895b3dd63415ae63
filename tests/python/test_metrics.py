"""/metrics read by the Prometheus project's own Python parsers: the
Prometheus text format and, with the Accept header Prometheus sends,
OpenMetrics (whose parser refuses anything off the spec: a missing
# EOF, a counter sample without _total, a bad escape, ...)."""

import urllib.request
import uuid

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from conftest import Broker

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@pytest.fixture(scope="module")
def http_broker():
    b = Broker(overrides=["http.listeners=http://127.0.0.1:0",
                          "group.initial.rebalance.delay.ms=0"])
    b.start()
    yield b
    b.kill9()


def fetch(addr, path, accept=None):
    req = urllib.request.Request(f"http://{addr}{path}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.headers.get("Content-Type"), r.read().decode()


def samples(families):
    out = {}
    for f in families:
        for s in f.samples:
            out.setdefault(s.name, []).append(s)
    return out


def test_both_formats_parse_and_agree(http_broker):
    from confluent_kafka import Consumer, Producer
    topic = f"py-metrics-{uuid.uuid4().hex[:8]}"
    group = f"py-metrics-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": http_broker.bootstrap})
    for i in range(50):
        p.produce(topic, f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": http_broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    for _ in range(120):
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
        if got == 50:
            break
    assert got == 50
    c.commit(asynchronous=False)
    c.close()

    ctype, text = fetch(http_broker.http, "/metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    prom = samples(parse_text(text))
    ctype, om = fetch(http_broker.http, "/metrics", PROMETHEUS_ACCEPT)
    assert ctype.startswith("application/openmetrics-text; version=1.0.0")
    assert om.endswith("# EOF\n")
    open_metrics = samples(parse_openmetrics(om))

    def value(ss, name, **labels):
        vals = [s.value for s in ss.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
        assert vals, f"no {name} {labels}"
        return sum(vals)

    for ss in (prom, open_metrics):
        assert value(ss, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 50
        assert value(ss, "kafka_network_requestmetrics_requests_total", request="Produce") >= 1
        assert value(ss, "kafka_server_replicamanager_underreplicatedpartitions") == 0
        assert value(ss, "kafka_consumergroup_lag", consumergroup=group, topic=topic) == 0
        assert value(ss, "kafka_network_requestmetrics_totaltimems_count", request="FetchConsumer") >= 1
        assert value(ss, "process_resident_memory_bytes") > 0
    # the same series in both formats
    assert set(prom) - {"oxka_build_info"} <= set(open_metrics) | {"oxka_build_info"}


def test_health(http_broker):
    import json
    _, body = fetch(http_broker.http, "/health/ready")
    ready = json.loads(body)
    assert ready["status"] == "ready", ready
    _, body = fetch(http_broker.http, "/health/live")
    assert json.loads(body)["status"] == "live"
