"""The console of a three-node cluster: lag and offsets of partitions led
by other nodes (asked of their leaders), records read from other leaders,
another broker's configs, the cluster's brokers."""

import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from harness import ConsoleCluster, commit, create_topic, produce, wait_for
from test_console import cells

TOPIC = "spread"
GROUP = "spread-readers"


@pytest.fixture(scope="module")
def cluster():
    c = ConsoleCluster(3).start()
    yield c
    c.stop()


def leaders(bootstrap, topic):
    from confluent_kafka.admin import AdminClient
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=15)
    return {p.id: p.leader for p in md.topics[topic].partitions.values()}


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_cluster_seen_from_every_node(driver, cluster):
    create_topic(cluster.bootstrap, TOPIC, partitions=6)
    led_by = wait_for(lambda: (l := leaders(cluster.bootstrap, TOPIC))
                      and all(v > 0 for v in l.values()) and l, what="leaders")
    assert len(set(led_by.values())) > 1, f"partitions spread over nodes: {led_by}"
    produce(cluster.bootstrap, TOPIC,
            [(p, f"k{p}-{i}".encode(), f"v{p}-{i}".encode(), [("h", b"x")])
             for p in range(6) for i in range(5)])
    real = commit(cluster.bootstrap, GROUP, TOPIC, {p: p % 5 for p in range(6)})
    assert real == {p: 5 - p % 5 for p in range(6)}

    # every node lists the group with its coordinator; only the
    # coordinator's console has its members and lag, the others point there
    coordinators = set()
    for n in cluster.nodes:
        driver.get(f"{n.url}/groups")
        [row] = [r for r in cells(driver, "groups") if r[0] == GROUP]
        coordinators.add(int(row[3]))
    assert len(coordinators) == 1, coordinators
    coordinator = cluster.nodes[coordinators.pop() - 1]
    for n in cluster.nodes:
        if n is coordinator:
            assert status(f"{n.url}/groups/{GROUP}") == 200
        else:
            assert status(f"{n.url}/groups/{GROUP}") == 404
            driver.get(f"{n.url}/groups/{GROUP}")
            assert (f"coordinated by node {coordinator.node_id}"
                    in driver.find_element(By.ID, "elsewhere").text)
    remote = [p for p, l in led_by.items() if l != coordinator.node_id]
    assert remote, "some partitions are led by other nodes"
    driver.get(f"{coordinator.url}/groups/{GROUP}")
    shown = {int(r[1]): (int(r[3]), int(r[4])) for r in cells(driver, "lag")}
    assert shown == {p: (5, lag) for p, lag in real.items()}

    # any node shows every partition's offsets, led there or not
    node = cluster.nodes[0]
    driver.get(f"{node.url}/topics/{TOPIC}")
    rows = cells(driver, "partitions")
    assert [(int(r[0]), int(r[1]), r[5], r[6]) for r in rows] == [
        (p, led_by[p], "0", "5") for p in range(6)]

    # records from every partition, whoever leads it
    driver.get(f"{node.url}/topics/{TOPIC}?partition=all&from=offset&offset=0&limit=100")
    rows = cells(driver, "records")
    assert sorted((int(r[0]), int(r[1])) for r in rows) == [
        (p, o) for p in range(6) for o in range(5)]

    # brokers: all three, and another broker's configs come from it
    driver.get(f"{node.url}/brokers")
    assert [r[0] for r in cells(driver, "brokers")] == ["1", "2", "3"]
    driver.get(f"{node.url}/brokers/3")
    row = driver.find_element(By.XPATH, "//table[@class='configs']//tr[td/code='node.id']")
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "3"
