"""The web console in a real browser (Debian's chromium, Selenium): pages
load and show what confluent-kafka created, the lag shown is the lag the
client computes, the message browser shows a produced record, actions are
refused when disabled and carried out (after confirmation) when enabled."""

import json
import urllib.error
import urllib.request

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from harness import commit, create_topic, get_json, produce, wait_for

TOPIC = "console-orders"
GROUP = "console-billing"


@pytest.fixture(scope="module")
def data(readonly):
    """A topic with records (JSON values, a header) and a group with
    committed offsets; returns the group's real lag per partition."""
    create_topic(readonly.bootstrap, TOPIC, partitions=3)
    records = []
    for i in range(10):
        value = json.dumps({"order": i, "items": ["a", "b"]}).encode()
        records.append((i % 3, f"key-{i}".encode(), value, [("source", b"console-test")]))
    produce(readonly.bootstrap, TOPIC, records)
    # partitions hold 4, 3, 3 records; commit 1, 3, 0
    lag = commit(readonly.bootstrap, GROUP, TOPIC, {0: 1, 1: 3, 2: 0})
    assert lag == {0: 3, 1: 0, 2: 3}
    return lag


def cells(driver, table_id):
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[td.text for td in r.find_elements(By.TAG_NAME, "td")] for r in rows]


def test_pages_load_and_show_what_the_clients_created(driver, readonly, data):
    driver.get(readonly.url + "/")
    assert "Cluster overview" in driver.title
    assert driver.find_element(By.CSS_SELECTOR, ".mode").text == "read-only"
    # the throughput chart is drawn by uPlot from /api/throughput
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "[data-chart=throughput]")
             .get_attribute("data-ready") == "1", what="throughput chart")

    driver.get(readonly.url + "/topics")
    link = driver.find_element(By.LINK_TEXT, TOPIC)
    row = link.find_element(By.XPATH, "./ancestor::tr")
    assert row.find_elements(By.TAG_NAME, "td")[1].text == "3"
    link.click()
    parts = cells(driver, "partitions")
    # partition, leader, epoch, replicas, ISR, start, end, messages
    assert [(p[0], p[1], p[5], p[6]) for p in parts] == [
        ("0", "1", "0", "4"), ("1", "1", "0", "3"), ("2", "1", "0", "3")]
    assert "cleanup.policy" in driver.find_element(By.CSS_SELECTOR, "table.configs").text

    driver.get(readonly.url + "/brokers")
    assert "this node" in driver.find_element(By.ID, "brokers").text
    driver.find_element(By.LINK_TEXT, "1").click()
    assert "log.retention.hours" in driver.find_element(By.CSS_SELECTOR, "table.configs").text


def test_group_lag_matches_the_clients_view(driver, readonly, data):
    driver.get(readonly.url + "/groups")
    link = driver.find_element(By.LINK_TEXT, GROUP)
    row = [td.text for td in link.find_element(By.XPATH, "./ancestor::tr")
           .find_elements(By.TAG_NAME, "td")]
    # group, type, state, coordinator, members, partitions, lag
    assert row[1:] == ["classic", "Empty", "1", "0", "3", str(sum(data.values()))]
    link.click()
    assert driver.find_element(By.ID, "total-lag").text == str(sum(data.values()))
    shown = {int(r[1]): int(r[4]) for r in cells(driver, "lag")}
    assert shown == data
    # the lag chart fills from the sampler's history within a few samples
    wait_for(lambda: int(driver.find_element(By.CSS_SELECTOR, "[data-chart=lag]")
                         .get_attribute("data-points") or 0) >= 1,
             timeout=30, what="lag history")


def test_throughput_counts_what_was_produced(readonly, data):
    """The sampler's history holds the produce of the data fixture (the
    broker's request counters, as /metrics has them)."""
    def produced():
        d = get_json(readonly.url + "/api/throughput")["data"]
        return any(m and m > 0 for m in d[1]) and any(b and b > 0 for b in d[2])
    wait_for(produced, timeout=30, what="messages and bytes in")


def test_message_browser_shows_a_produced_record(driver, readonly, data):
    driver.get(readonly.url + "/topics/" + TOPIC)
    Select(driver.find_element(By.NAME, "partition")).select_by_value("1")
    Select(driver.find_element(By.NAME, "from")).select_by_value("offset")
    driver.find_element(By.NAME, "offset").send_keys("0")
    driver.find_element(By.CSS_SELECTOR, "form.browse button").click()
    rows = wait_for(lambda: cells(driver, "records"), what="records")
    # partition 1 holds records 1, 4, 7
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("1", "0", "key-1"), ("1", "1", "key-4"), ("1", "2", "key-7")]
    value = driver.find_element(By.CSS_SELECTOR, "#records tbody tr td.value pre")
    assert value.get_attribute("class") == "json"
    assert json.loads(value.text) == {"order": 1, "items": ["a", "b"]}
    assert "\n" in value.text, "pretty-printed"
    header = driver.find_element(By.CSS_SELECTOR, "#records tbody tr td.headers").text
    assert header == "source: console-test"

    Select(driver.find_element(By.NAME, "format")).select_by_value("hex")
    driver.find_element(By.CSS_SELECTOR, "form.browse button").click()

    def key_shown():
        # the old page's table until the new one has loaded
        try:
            return driver.find_element(By.CSS_SELECTOR, "#records tbody tr td.key pre").text
        except (StaleElementReferenceException, NoSuchElementException):
            return None
    wait_for(lambda: key_shown() == "6b 65 79 2d 31", what='the key in hex ("key-1")')

    # latest across all partitions: the newest first
    driver.get(readonly.url + f"/topics/{TOPIC}?from=latest&partition=all&limit=5")
    assert len(cells(driver, "records")) == 5


def test_actions_are_refused_when_disabled(driver, readonly, data):
    driver.get(readonly.url + "/topics/" + TOPIC)
    assert not driver.find_elements(By.CSS_SELECTOR, "form.action")
    status = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/actions/delete-topic', {method: 'POST',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'},
              body: 'confirm=yes&name=""" + TOPIC + """'}).then(r => done(r.status));
    """)
    assert status == 403
    req = urllib.request.Request(readonly.url + "/actions/create-topic", method="POST",
                                 data=b"confirm=yes&name=x&partitions=1&replication_factor=1")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    driver.get(readonly.url + "/topics")
    assert driver.find_elements(By.LINK_TEXT, TOPIC)
    assert not driver.find_elements(By.LINK_TEXT, "x")


def submit_confirmed(driver, form_selector, accept=True):
    driver.find_element(By.CSS_SELECTOR, form_selector + " button").click()
    alert = wait_for(lambda: _alert(driver), what="confirmation dialog")
    if accept:
        alert.accept()
    else:
        alert.dismiss()


def _alert(driver):
    try:
        return driver.switch_to.alert
    except Exception:
        return None


def test_actions_work_when_enabled(driver, writable):
    from confluent_kafka.admin import AdminClient, ConfigResource
    admin = AdminClient({"bootstrap.servers": writable.bootstrap})
    url = writable.url

    # create a topic; a dismissed confirmation changes nothing
    driver.get(url + "/topics")
    assert driver.find_element(By.CSS_SELECTOR, ".mode").text == "actions enabled"
    driver.find_element(By.NAME, "name").send_keys("made-in-console")
    driver.find_element(By.NAME, "partitions").clear()
    driver.find_element(By.NAME, "partitions").send_keys("2")
    driver.find_element(By.NAME, "replication_factor").clear()
    driver.find_element(By.NAME, "replication_factor").send_keys("1")
    submit_confirmed(driver, "form[action='/actions/create-topic']", accept=False)
    assert "made-in-console" not in admin.list_topics(timeout=10).topics
    submit_confirmed(driver, "form[action='/actions/create-topic']")
    wait_for(lambda: "Created topic made-in-console" in driver.page_source, what="flash")
    assert len(admin.list_topics(timeout=10).topics["made-in-console"].partitions) == 2

    # add partitions
    total = driver.find_element(By.NAME, "total")
    total.clear()
    total.send_keys("4")
    submit_confirmed(driver, "form[action='/actions/add-partitions']")
    wait_for(lambda: len(cells(driver, "partitions")) == 4, what="4 partitions")
    assert len(admin.list_topics(timeout=10).topics["made-in-console"].partitions) == 4

    # change a config
    driver.find_element(By.NAME, "key").send_keys("retention.ms")
    driver.find_element(By.NAME, "value").send_keys("3600000")
    submit_confirmed(driver, "form[action='/actions/set-config']")
    wait_for(lambda: "Set retention.ms=3600000" in driver.page_source, what="flash")
    res = ConfigResource(ConfigResource.Type.TOPIC, "made-in-console")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "3600000"

    # a refused change shows Kafka's error
    driver.find_element(By.NAME, "key").send_keys("no.such.config")
    driver.find_element(By.NAME, "value").send_keys("1")
    submit_confirmed(driver, "form[action='/actions/set-config']")
    wait_for(lambda: driver.find_elements(By.ID, "refused"), what="refusal")

    # reset a group's offsets to the latest: its lag becomes 0
    produce(writable.bootstrap, "made-in-console", [(0, b"k", b"v", None)] * 5)
    lag = commit(writable.bootstrap, "reset-me", "made-in-console", {0: 1})
    assert lag == {0: 4}
    driver.get(url + "/groups/reset-me")
    assert driver.find_element(By.ID, "total-lag").text == "4"
    Select(driver.find_element(By.NAME, "to")).select_by_value("latest")
    submit_confirmed(driver, "form[action='/actions/reset-offsets']")
    wait_for(lambda: driver.find_elements(By.ID, "total-lag")
             and driver.find_element(By.ID, "total-lag").text == "0", what="lag 0")
    assert commit_free_lag(writable.bootstrap, "reset-me", "made-in-console") == 0

    # delete the topic
    driver.get(url + "/topics/made-in-console")
    submit_confirmed(driver, "form[action='/actions/delete-topic']")
    wait_for(lambda: "Deleted topic made-in-console" in driver.page_source, what="flash")
    wait_for(lambda: "made-in-console" not in admin.list_topics(timeout=10).topics,
             what="topic gone")


def commit_free_lag(bootstrap, group, topic):
    """The group's lag on partition 0 as a client sees it, without committing."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False})
    try:
        [tp] = c.committed([TopicPartition(topic, 0)], timeout=15)
        _, high = c.get_watermark_offsets(tp, timeout=15, cached=False)
        return high - tp.offset
    finally:
        c.close()


def test_a_kip848_group_shows_its_members_and_assignment(driver, readonly, data):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": readonly.bootstrap, "group.id": "console-848",
                  "group.protocol": "consumer", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "client.id": "reader-848"})
    try:
        c.subscribe([TOPIC])
        got = []
        wait_for(lambda: got.extend(c.consume(10, timeout=0.5)) or len(got) >= 10,
                 timeout=30, what="records of the KIP-848 group")
        c.commit(asynchronous=False)
        driver.get(readonly.url + "/groups/console-848")
        text = driver.find_element(By.TAG_NAME, "main").text
        assert "consumer group" in text and "Stable" in text
        members = cells(driver, "members")
        assert len(members) == 1 and members[0][1] == "reader-848"
        assert members[0][3] == f"{TOPIC}: 0, 1, 2"
        lag = cells(driver, "lag")
        assert [(int(r[1]), int(r[4])) for r in lag] == [(0, 0), (1, 0), (2, 0)]
        assert all(r[5] == members[0][0] for r in lag), "each partition's member"
    finally:
        c.close()


def test_unknown_host_names_are_refused(readonly):
    """A DNS name pointed at the broker (DNS rebinding) gets 403; IP
    addresses and localhost are served."""
    def status(host):
        req = urllib.request.Request(readonly.url + "/topics", headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    assert status(f"localhost:{readonly.http_port}") == 200
    assert status(f"rebound.example:{readonly.http_port}") == 403
