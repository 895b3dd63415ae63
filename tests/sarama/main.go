// Drives oxka with Debian's sarama 1.22 (golang-github-shopify-sarama-dev),
// a client pinned to request versions Kafka 4.0 removed (KIP-896): it lists
// topics with Metadata v0 and DescribeConfigs v0, reads offsets with
// ListOffsets v0, and commits a consumer group's offsets with
// OffsetCommit v1. Exits non-zero on the first thing that goes wrong.
//
//	go run main.go <broker host:port>
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/Shopify/sarama"
)

const (
	topic = "sarama-orders"
	group = "sarama-group"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func config(version sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = version
	c.ClientID = "sarama-1.22"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	// Retention 0 (the default) makes the offset manager commit with
	// OffsetCommit v1, as applications built on this version do.
	c.Consumer.Offsets.Retention = 0
	c.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

// handler consumes until it has seen `want` messages, records the first
// offset it got, and marks every message for commit.
type handler struct {
	want  int
	got   []int64
	ready chan struct{}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.got = append(h.got, m.Offset)
		s.MarkMessage(m, "")
		if len(h.got) == h.want {
			close(h.ready)
			return nil
		}
	}
	return nil
}

// consume runs one consumer group member until it has `want` messages,
// then closes it (which commits the marked offsets).
func consume(brokers []string, want int) []int64 {
	cg, err := sarama.NewConsumerGroup(brokers, group, config(sarama.V1_0_0_0))
	if err != nil {
		fail("consumer group: %v", err)
	}
	h := &handler{want: want, ready: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for err := range cg.Errors() {
			fmt.Fprintf(os.Stderr, "consumer group error: %v\n", err)
		}
	}()
	select {
	case <-h.ready:
	case err := <-done:
		fail("consume: %v", err)
	case <-time.After(30 * time.Second):
		fail("consumed %d of %d messages in 30 s", len(h.got), want)
	}
	cancel()
	<-done
	if err := cg.Close(); err != nil {
		fail("close consumer group: %v", err)
	}
	return h.got
}

func produce(brokers []string, n int, from int) {
	p, err := sarama.NewSyncProducer(brokers, config(sarama.V1_0_0_0))
	if err != nil {
		fail("producer: %v", err)
	}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("order-%d", from+i)
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}); err != nil {
			fail("produce %s: %v", v, err)
		}
	}
	if err := p.Close(); err != nil {
		fail("close producer: %v", err)
	}
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: %s host:port", os.Args[0])
	}
	brokers := []string{os.Args[1]}

	admin, err := sarama.NewClusterAdmin(brokers, config(sarama.V1_0_0_0))
	if err != nil {
		fail("admin: %v", err)
	}
	retention := "86400000"
	err = admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     1,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}, false)
	if err != nil {
		fail("create topic: %v", err)
	}
	// Metadata v0 (empty list = every topic) and DescribeConfigs v0; the
	// details keep only non-default configs.
	topics, err := admin.ListTopics()
	if err != nil {
		fail("list topics: %v", err)
	}
	d, ok := topics[topic]
	if !ok {
		fail("list topics: %s missing from %v", topic, topics)
	}
	if v := d.ConfigEntries["retention.ms"]; v == nil || *v != retention || len(d.ConfigEntries) != 1 {
		fail("list topics: non-default configs of %s: %v", topic, d.ConfigEntries)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		fail("describe configs: %v", err)
	}
	found := false
	for _, e := range entries {
		if e.Name == "cleanup.policy" {
			found = e.Value == "delete" && e.Default
		}
	}
	if !found {
		fail("describe configs: cleanup.policy=delete (default) not in %v", entries)
	}
	_ = admin.Close()
	fmt.Printf("listed %d topics, described %d configs (DescribeConfigs v0)\n", len(topics), len(entries))

	produce(brokers, 10, 0)

	// ListOffsets v0: a client configured for Kafka 0.10.0.
	old, err := sarama.NewClient(brokers, config(sarama.V0_10_0_0))
	if err != nil {
		fail("client: %v", err)
	}
	newest, err := old.GetOffset(topic, 0, sarama.OffsetNewest)
	if err != nil || newest != 10 {
		fail("ListOffsets v0 latest: %d, %v", newest, err)
	}
	oldest, err := old.GetOffset(topic, 0, sarama.OffsetOldest)
	if err != nil || oldest != 0 {
		fail("ListOffsets v0 earliest: %d, %v", oldest, err)
	}
	_ = old.Close()
	fmt.Println("ListOffsets v0: earliest 0, latest 10")

	first := consume(brokers, 10)
	if first[0] != 0 || first[9] != 9 {
		fail("first run consumed offsets %v", first)
	}
	fmt.Println("first consumer: offsets 0-9, committed with OffsetCommit v1")

	produce(brokers, 5, 10)
	// A restarted member resumes from the committed offset, not from the
	// oldest one.
	second := consume(brokers, 5)
	if second[0] != 10 {
		fail("restarted consumer began at offset %d, not at the committed 10", second[0])
	}
	fmt.Println("restarted consumer: resumed at offset 10")
	fmt.Println("sarama 1.22: OK")
}
