"""What the console's browser tests and the screenshot script share: an
oxka broker with its HTTP listener on a free port, Debian's chromium driven
by Selenium (the system chromedriver, never a downloaded one), and the
records and groups they create with confluent-kafka."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleBroker:
    """One broker; `actions` sets http.console.actions.enable."""

    def __init__(self, actions=False, overrides=()):
        self.bin = os.environ.get("OXKA_BIN", os.path.join(ROOT, "target", "debug", "oxka"))
        self.port = free_port()
        self.http_port = free_port()
        self.data = tempfile.mkdtemp(prefix="oxka-console-")
        self.actions = actions
        self.overrides = list(overrides)
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def start(self):
        args = [self.bin, "broker", "--listen", self.bootstrap, "--data-dir", self.data,
                "--log-level", "warn",
                "--override", f"http.listeners=http://127.0.0.1:{self.http_port}",
                "--override", f"http.console.actions.enable={'true' if self.actions else 'false'}"]
        for o in self.overrides:
            args += ["--override", o]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None,
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode()
        assert "started" in line, f"broker did not start: {line!r}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the console did not answer")

    def stop(self):
        if self.proc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None


def browser(width=1280, height=900):
    """Headless chromium through the system chromedriver (offline: no
    Selenium Manager download)."""
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--disable-extensions",
              "--no-first-run", "--disable-background-networking"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def wait_for(cond, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def create_topic(bootstrap, name, partitions=3, configs=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(name, partitions, 1, config=configs or {})])
    fs[name].result(15)


def produce(bootstrap, topic, records):
    """records: (partition, key, value, headers) tuples."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for partition, key, value, headers in records:
        p.produce(topic, key=key, value=value, partition=partition, headers=headers)
    assert p.flush(15) == 0


def commit(bootstrap, group, topic, offsets):
    """Commits {partition: offset} for `group` with a confluent-kafka consumer
    (a real client's OffsetCommit); returns the group's real lag per
    partition as the client computes it (high watermark - committed)."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    # a new cluster's group coordinator may still be loading: librdkafka's
    # synchronous commit reports that instead of retrying
    loading = {KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
               KafkaError.COORDINATOR_LOAD_IN_PROGRESS}
    try:
        tps = [TopicPartition(topic, p, o) for p, o in offsets.items()]
        deadline = time.monotonic() + 30
        while True:
            try:
                c.commit(offsets=tps, asynchronous=False)
                break
            except KafkaException as e:
                if e.args[0].code() not in loading or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        lag = {}
        for tp in c.committed([TopicPartition(topic, p) for p in offsets], timeout=15):
            _, high = c.get_watermark_offsets(tp, timeout=15, cached=False)
            lag[tp.partition] = high - tp.offset
        return lag
    finally:
        c.close()


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


class ConsoleCluster:
    """`n` nodes, each a broker and a voter of the metadata quorum, each
    with its own console; nodes[i].url and .bootstrap as ConsoleBroker."""

    def __init__(self, n=3):
        self.nodes = [ConsoleBroker() for _ in range(n)]
        for i, node in enumerate(self.nodes):
            node.node_id = i + 1
            node.controller_port = free_port()
        voters = ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in self.nodes)
        for node in self.nodes:
            node.overrides = [
                f"node.id={node.node_id}",
                "process.roles=broker,controller",
                f"listeners=PLAINTEXT://127.0.0.1:{node.port},"
                f"CONTROLLER://127.0.0.1:{node.controller_port}",
                "controller.listener.names=CONTROLLER",
                f"controller.quorum.voters={voters}",
                f"log.dirs={node.data}",
            ]

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes)

    def start(self):
        # every node waits for a quorum before it prints its start-up line
        procs = []
        for node in self.nodes:
            args = [node.bin, "broker", "--log-level", "warn",
                    "--override", f"http.listeners=http://127.0.0.1:{node.http_port}"]
            for o in node.overrides:
                args += ["--override", o]
            node.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None,
                                         start_new_session=True)
            procs.append(node.proc)
        for node in self.nodes:
            line = node.proc.stdout.readline().decode()
            assert "started" in line, f"node {node.node_id} did not start: {line!r}"
        for node in self.nodes:
            wait_for(lambda: _answers(node.url), what=f"console of node {node.node_id}")
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()


def _answers(url):
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
