//! One scrape: every metric family read from the broker at that moment and
//! written with `prometheus-client`'s OpenMetrics encoder.
//!
//! State is read here, not counted on the hot path: the logs' sizes and
//! offsets (each partition's log mutex held for a few loads), the metadata
//! image (partition and leader counts, under-replicated, offline), the
//! controller, the groups this node coordinates with their lag (computed by
//! `group_lag` before the scrape, since it may ask other leaders), the
//! process. Families with no sample are left out.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;

use super::histogram::HistogramSnapshot;
use super::{ApiMetrics, BrokerMetrics, TopicCounters};
use crate::group_lag::GroupLag;
use crate::server::BrokerState;

type Labels = Vec<(&'static str, String)>;

/// What one scrape reads.
pub struct Scrape {
    pub state: Arc<BrokerState>,
    /// The Kafka listeners accept (Kafka's BrokerState RUNNING).
    pub serving: bool,
    pub lags: Vec<GroupLag>,
    /// The runtime the broker serves on (its workers' busy time).
    pub runtime: Option<tokio::runtime::RuntimeMetrics>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

/// A sample value: counters and gauges alike.
#[derive(Clone, Copy)]
enum V {
    U(u64),
    I(i64),
    F(f64),
}

struct Family {
    name: std::borrow::Cow<'static, str>,
    help: &'static str,
    ty: MetricType,
    samples: Vec<(Labels, V)>,
}

impl Family {
    fn new(
        name: impl Into<std::borrow::Cow<'static, str>>,
        ty: MetricType,
        help: &'static str,
    ) -> Family {
        Family {
            name: name.into(),
            help,
            ty,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: Labels, v: V) -> &mut Self {
        self.samples.push((labels, v));
        self
    }

    fn encode(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(&self.name, self.help, None, self.ty)?;
        for (labels, v) in &self.samples {
            if labels.is_empty() {
                sample(&mut m, self.ty, *v)?;
            } else {
                sample(&mut m.encode_family(labels)?, self.ty, *v)?;
            }
        }
        Ok(())
    }
}

fn sample(
    m: &mut prometheus_client::encoding::MetricEncoder,
    ty: MetricType,
    v: V,
) -> Result<(), std::fmt::Error> {
    let none: Option<&prometheus_client::metrics::exemplar::Exemplar<Labels, f64>> = None;
    match (ty, v) {
        (MetricType::Counter, V::U(u)) => m.encode_counter(&u, none),
        (MetricType::Counter, V::I(i)) => m.encode_counter(&(i.max(0) as u64), none),
        (MetricType::Counter, V::F(f)) => m.encode_counter(&f, none),
        (_, V::U(u)) => m.encode_gauge(&u),
        (_, V::I(i)) => m.encode_gauge(&i),
        (_, V::F(f)) => m.encode_gauge(&f),
    }
}

struct HistogramFamily {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels, HistogramSnapshot)>,
}

/// A histogram sample for the encoder.
#[derive(Debug)]
struct H<'a>(&'a HistogramSnapshot);

impl EncodeMetric for H<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<Labels>(self.0.sum, self.0.count, &self.0.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl HistogramFamily {
    fn encode(&self, enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut m = enc.encode_descriptor(self.name, self.help, None, MetricType::Histogram)?;
        if let [(labels, h)] = self.samples.as_slice() {
            if labels.is_empty() {
                // one series without labels: no `{}` on its lines
                return H(h).encode(m);
            }
        }
        for (labels, h) in &self.samples {
            H(h).encode(m.encode_family(labels)?)?;
        }
        Ok(())
    }
}

/// A Yammer timer as the JMX exporter's Kafka rules export it: a gauge
/// `<name>{quantile="0.99"}` per percentile attribute (here over the last
/// minutes, [`oxka_log::latency::RecentQuantiles`]) and `<name>_count`,
/// the observations since start. `_count` is untyped: a counter's
/// samples would take `_total` in OpenMetrics, and these must keep the
/// exporter's series names.
struct TimerFamilies {
    quantiles: Family,
    count: Family,
}

impl TimerFamilies {
    fn new(name: &'static str, help: &'static str) -> TimerFamilies {
        TimerFamilies {
            quantiles: Family::new(name, MetricType::Gauge, help),
            count: Family::new(
                format!("{name}_count"),
                MetricType::Unknown,
                "Observations since start (the timer's Count).",
            ),
        }
    }

    fn add(&mut self, labels: Labels, h: &super::Histogram, count: u64) {
        let qs: Vec<f64> = oxka_log::latency::YAMMER_QUANTILES
            .iter()
            .map(|(q, _)| *q)
            .collect();
        for (v, (_, label)) in h
            .recent_quantiles(&qs)
            .into_iter()
            .zip(oxka_log::latency::YAMMER_QUANTILES)
        {
            let mut l = labels.clone();
            l.push(("quantile", label.to_string()));
            self.quantiles.add(l, V::F(v));
        }
        self.count.add(labels, V::U(count));
    }

    fn into_families(self) -> [Family; 2] {
        [self.quantiles, self.count]
    }
}

fn l1(k: &'static str, v: impl Into<String>) -> Labels {
    vec![(k, v.into())]
}

fn load(c: &std::sync::atomic::AtomicU64) -> V {
    V::U(c.load(Ordering::Relaxed))
}

/// Kafka's `Errors` name of a code: `NONE`, `NOT_LEADER_OR_FOLLOWER`, ...
pub fn error_name(code: i16) -> String {
    match kafka_protocol::error::ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(kafka_protocol::error::ResponseError::Unknown(c)) => format!("UNKNOWN_{c}"),
        Some(e) => {
            let camel = e.to_string();
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
    }
}

impl Scrape {
    fn broker_topic_metrics(&self) -> Vec<Family> {
        let stats = self.state.replica_manager.topic_stats();
        let topics = stats.snapshot();
        type Pick = fn(&TopicCounters) -> &std::sync::atomic::AtomicU64;
        let defs: [(&'static str, &'static str, Pick); 10] = [
            ("kafka_server_brokertopicmetrics_messagesin", "Records appended as leader from producers (BrokerTopicMetrics MessagesInPerSec).", |c| &c.messages_in),
            ("kafka_server_brokertopicmetrics_bytesin", "Record bytes appended as leader from producers (BytesInPerSec).", |c| &c.bytes_in),
            ("kafka_server_brokertopicmetrics_bytesout", "Record bytes sent to consumers (BytesOutPerSec).", |c| &c.bytes_out),
            ("kafka_server_brokertopicmetrics_bytesrejected", "Record bytes refused as invalid or too large (BytesRejectedPerSec).", |c| &c.bytes_rejected),
            ("kafka_server_brokertopicmetrics_failedproducerequests", "Partition appends of produce requests that failed (FailedProduceRequestsPerSec).", |c| &c.failed_produce_requests),
            ("kafka_server_brokertopicmetrics_failedfetchrequests", "Partition reads of fetch requests that failed (FailedFetchRequestsPerSec).", |c| &c.failed_fetch_requests),
            ("kafka_server_brokertopicmetrics_totalproducerequests", "Partition appends of produce requests (TotalProduceRequestsPerSec).", |c| &c.total_produce_requests),
            ("kafka_server_brokertopicmetrics_totalfetchrequests", "Partition reads of fetch requests, consumers and followers (TotalFetchRequestsPerSec).", |c| &c.total_fetch_requests),
            ("kafka_server_brokertopicmetrics_replicationbytesin", "Record bytes appended as follower (ReplicationBytesInPerSec).", |c| &c.replication_bytes_in),
            ("kafka_server_brokertopicmetrics_replicationbytesout", "Record bytes sent to followers (ReplicationBytesOutPerSec).", |c| &c.replication_bytes_out),
        ];
        defs.iter()
            .map(|(name, help, pick)| {
                let mut f = Family::new(*name, MetricType::Counter, help);
                f.add(Vec::new(), load(pick(stats.all_topics())));
                for (topic, s) in &topics {
                    f.add(l1("topic", topic.clone()), load(pick(s.counters())));
                }
                f
            })
            .collect()
    }

    fn request_metrics(&self, m: &BrokerMetrics) -> (Vec<Family>, Vec<HistogramFamily>) {
        let mut requests = Family::new(
            "kafka_network_requestmetrics_requests",
            MetricType::Counter,
            "Requests received, by API and version (RequestMetrics RequestsPerSec).",
        );
        let mut errors = Family::new(
            "kafka_network_requestmetrics_errors",
            MetricType::Counter,
            "Error codes in responses, NONE included, by API (RequestMetrics ErrorsPerSec); Produce and Fetch count one per partition.",
        );
        type Pick = fn(&ApiMetrics) -> &super::Histogram;
        // (Kafka's name, the histogram's, help, stage)
        let stages: [(&'static str, &'static str, &'static str, Pick); 6] = [
            ("kafka_network_requestmetrics_requestqueuetimems", "oxka_network_requestmetrics_requestqueuetimems", "Milliseconds a read request waited for a queued.max.requests slot (RequestQueueTimeMs).", |a| &a.request_queue_time),
            ("kafka_network_requestmetrics_localtimems", "oxka_network_requestmetrics_localtimems", "Milliseconds a request was worked on by its handler (LocalTimeMs).", |a| &a.local_time),
            ("kafka_network_requestmetrics_remotetimems", "oxka_network_requestmetrics_remotetimems", "Milliseconds a request was parked: acks=all, long-poll fetch, group join (RemoteTimeMs).", |a| &a.remote_time),
            ("kafka_network_requestmetrics_responsequeuetimems", "oxka_network_requestmetrics_responsequeuetimems", "Milliseconds a response waited for the connection's writer (ResponseQueueTimeMs).", |a| &a.response_queue_time),
            ("kafka_network_requestmetrics_responsesendtimems", "oxka_network_requestmetrics_responsesendtimems", "Milliseconds writing a response to the socket (ResponseSendTimeMs).", |a| &a.response_send_time),
            ("kafka_network_requestmetrics_totaltimems", "oxka_network_requestmetrics_totaltimems", "Milliseconds from a request's last byte read to its response's last byte written (TotalTimeMs).", |a| &a.total_time),
        ];
        let mut hists: Vec<HistogramFamily> = stages
            .iter()
            .map(|(_, name, help, _)| HistogramFamily {
                name,
                help,
                samples: Vec::new(),
            })
            .collect();
        let mut timers: Vec<TimerFamilies> = stages
            .iter()
            .map(|(name, _, help, _)| TimerFamilies::new(name, help))
            .collect();
        for (name, api) in m.requests.all() {
            for (v, c) in api.requests.iter().enumerate() {
                let c = c.load(Ordering::Relaxed);
                if c > 0 {
                    requests.add(
                        vec![("request", name.clone()), ("version", v.to_string())],
                        V::U(c),
                    );
                }
            }
            for (i, c) in api.errors.iter().enumerate() {
                let c = c.load(Ordering::Relaxed);
                if c > 0 {
                    errors.add(
                        vec![
                            ("request", name.clone()),
                            ("error", error_name(i as i16 - 1)),
                        ],
                        V::U(c),
                    );
                }
            }
            if api.total_time.snapshot().count == 0 {
                continue;
            }
            for ((h, t), (_, _, _, pick)) in hists.iter_mut().zip(&mut timers).zip(stages.iter()) {
                let snapshot = pick(api).snapshot();
                t.add(l1("request", name.clone()), pick(api), snapshot.count);
                h.samples.push((l1("request", name.clone()), snapshot));
            }
        }
        let mut families = vec![requests, errors];
        families.extend(timers.into_iter().flat_map(TimerFamilies::into_families));
        (families, hists)
    }

    fn network_metrics(&self, m: &BrokerMetrics) -> Vec<Family> {
        let mut count = Family::new(
            "kafka_server_socket_server_metrics_connection_count",
            MetricType::Gauge,
            "Open connections, by listener (socket-server-metrics connection-count).",
        );
        let mut created = Family::new(
            "kafka_server_socket_server_metrics_connection_creation",
            MetricType::Counter,
            "Connections accepted, by listener (socket-server-metrics connection-creation-total).",
        );
        let mut closed = Family::new(
            "kafka_server_socket_server_metrics_connection_close",
            MetricType::Counter,
            "Connections closed, by listener (socket-server-metrics connection-close-total).",
        );
        for l in m.network.listeners() {
            let c = l.created.load(Ordering::Relaxed);
            let d = l.closed.load(Ordering::Relaxed);
            count.add(l1("listener", l.name.clone()), V::U(c.saturating_sub(d)));
            created.add(l1("listener", l.name.clone()), V::U(c));
            closed.add(l1("listener", l.name.clone()), V::U(d));
        }
        let slots = &self.state.request_slots;
        let max = self.state.config.queued_max_requests.max(1);
        let mut queue = Family::new(
            "kafka_network_requestchannel_requestqueuesize",
            MetricType::Gauge,
            "Requests read and waiting for a queued.max.requests slot (RequestChannel RequestQueueSize).",
        );
        queue.add(
            Vec::new(),
            V::I(m.network.request_queue_size.load(Ordering::Relaxed).max(0)),
        );
        let idle_share = self
            .runtime
            .as_ref()
            .map(|r| V::F(m.runtime_idle.share(r, std::time::Instant::now())));
        let mut handler_idle = Family::new(
            "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent",
            MetricType::Gauge,
            "Share (0 to 1) of the last minute the runtime's worker threads were idle; oxka handles requests as tasks on them (RequestHandlerAvgIdlePercent's nearest measure).",
        );
        let mut network_idle = Family::new(
            "kafka_network_socketserver_networkprocessoravgidle_percent",
            MetricType::Gauge,
            "Share (0 to 1) of the last minute the runtime's worker threads were idle; oxka serves sockets as tasks on them (NetworkProcessorAvgIdlePercent's nearest measure).",
        );
        if let Some(v) = idle_share {
            handler_idle.add(Vec::new(), v);
            network_idle.add(Vec::new(), v);
        }
        let mut free_slots = Family::new(
            "oxka_network_request_slots_available",
            MetricType::Gauge,
            "queued.max.requests slots free: requests that may start now.",
        );
        free_slots.add(Vec::new(), V::U(slots.available_permits().min(max) as u64));
        vec![
            count,
            created,
            closed,
            queue,
            handler_idle,
            network_idle,
            free_slots,
        ]
    }

    fn log_and_replica_metrics(&self) -> Vec<Family> {
        let rm = &self.state.replica_manager;
        let (shrinks, expands, failed_isr_updates) = rm.isr_change_counts();
        let image = self.state.controller.image();
        let mut size = Family::new(
            "kafka_log_log_size",
            MetricType::Gauge,
            "Bytes of a partition's log on disk (Log Size).",
        );
        let mut segments = Family::new(
            "kafka_log_log_numlogsegments",
            MetricType::Gauge,
            "Segments of a partition's log (Log NumLogSegments).",
        );
        let mut start = Family::new(
            "kafka_log_log_logstartoffset",
            MetricType::Gauge,
            "A partition's log start offset (Log LogStartOffset).",
        );
        let mut end = Family::new(
            "kafka_log_log_logendoffset",
            MetricType::Gauge,
            "A partition's log end offset (Log LogEndOffset).",
        );
        let mut under_partition = Family::new(
            "kafka_cluster_partition_underreplicated",
            MetricType::Gauge,
            "1 when a partition led here has fewer in-sync replicas than replicas (Partition UnderReplicated).",
        );
        let (mut partitions, mut leaders, mut under, mut under_min, mut at_min, mut offline) =
            (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut hosted = rm.all_partitions();
        hosted.sort_by(|a, b| a.tp.cmp(&b.tp));
        for p in &hosted {
            let labels = || {
                vec![
                    ("topic", p.tp.topic.clone()),
                    ("partition", p.tp.partition.to_string()),
                ]
            };
            {
                let log = p.log.lock();
                size.add(labels(), V::U(log.size_in_bytes()));
                segments.add(labels(), V::U(log.num_segments() as u64));
                start.add(labels(), V::I(log.log_start_offset()));
                end.add(labels(), V::I(log.log_end_offset()));
            }
            partitions += 1;
            let info = image
                .topic(&p.tp.topic)
                .and_then(|t| t.partitions.get(p.tp.partition as usize));
            if info.is_some_and(|i| i.leader < 0) {
                offline += 1;
            }
            if !p.is_leader() {
                continue;
            }
            leaders += 1;
            let isr = info.map_or(p.isr_size() as usize, |i| i.isr.len());
            let replicas = info.map_or(isr, |i| i.replicas.len());
            let is_under = isr < replicas;
            under += is_under as u64;
            under_partition.add(labels(), V::U(is_under as u64));
            let min_isr = p.min_insync_replicas().max(1) as usize;
            under_min += (isr < min_isr) as u64;
            at_min += (isr == min_isr) as u64;
        }
        let gauge = |name, help, v: u64| {
            let mut f = Family::new(name, MetricType::Gauge, help);
            f.add(Vec::new(), V::U(v));
            f
        };
        let counter = |name, help, v: u64| {
            let mut f = Family::new(name, MetricType::Counter, help);
            f.add(Vec::new(), V::U(v));
            f
        };
        vec![
            size,
            segments,
            start,
            end,
            under_partition,
            gauge("kafka_server_replicamanager_partitioncount", "Partitions hosted here (ReplicaManager PartitionCount).", partitions),
            gauge("kafka_server_replicamanager_leadercount", "Partitions led here (ReplicaManager LeaderCount).", leaders),
            gauge("kafka_server_replicamanager_underreplicatedpartitions", "Partitions led here with fewer in-sync replicas than replicas (ReplicaManager UnderReplicatedPartitions).", under),
            gauge("kafka_server_replicamanager_underminisrpartitioncount", "Partitions led here with fewer in-sync replicas than min.insync.replicas (ReplicaManager UnderMinIsrPartitionCount).", under_min),
            gauge("kafka_server_replicamanager_atminisrpartitioncount", "Partitions led here with exactly min.insync.replicas in-sync replicas (ReplicaManager AtMinIsrPartitionCount).", at_min),
            gauge("kafka_server_replicamanager_offlinereplicacount", "Partitions hosted here that have no leader (ReplicaManager OfflineReplicaCount).", offline),
            counter("kafka_server_replicamanager_isrshrinks", "ISR shrinks of partitions led here that the controller accepted (ReplicaManager IsrShrinksPerSec).", shrinks),
            counter("kafka_server_replicamanager_isrexpands", "ISR expansions of partitions led here that the controller accepted (ReplicaManager IsrExpandsPerSec).", expands),
            counter("kafka_server_replicamanager_failedisrupdates", "ISR changes of partitions led here the controller refused or did not answer (ReplicaManager FailedIsrUpdatesPerSec).", failed_isr_updates),
        ]
    }

    fn cleaner_metrics(&self, m: &BrokerMetrics) -> Vec<Family> {
        let Some(c) = m.cleaner.get() else {
            return Vec::new();
        };
        let t = c.totals();
        let one = |name, ty, help, v: V| {
            let mut f = Family::new(name, ty, help);
            f.add(Vec::new(), v);
            f
        };
        vec![
            one("kafka_log_logcleaner_max_clean_time_secs", MetricType::Gauge, "Seconds of the last cleaner round's longest pass (LogCleaner max-clean-time-secs).", V::F(t.last_round_max_secs)),
            one("kafka_log_logcleaner_cleaner_recopy_percent", MetricType::Gauge, "Bytes written per byte cleaned by the last pass, in percent (LogCleaner cleaner-recopy-percent).", V::F(t.last_recopy_percent)),
            one("oxka_log_cleaner_runs", MetricType::Counter, "Cleaner passes completed, one log each (oxka's; Kafka has no such MBean).", V::U(t.runs)),
            one("oxka_log_cleaner_bytes_cleaned", MetricType::Counter, "Bytes of segments the cleaner rewrote, their size before cleaning.", V::U(t.bytes_cleaned)),
            one("oxka_log_cleaner_bytes_written", MetricType::Counter, "Bytes the cleaner wrote to cleaned segments.", V::U(t.bytes_written)),
            one("oxka_log_cleaner_records_removed", MetricType::Counter, "Records the cleaner removed (superseded, keyless, expired tombstones).", V::U(t.records_removed)),
        ]
    }

    fn controller_metrics(&self) -> Vec<Family> {
        let st = &self.state;
        let node = st.config.node_id;
        let image = st.controller.image();
        let active = st.controller.active_controller() == Some(node);
        let gauge = |name, help, v: u64| {
            let mut f = Family::new(name, MetricType::Gauge, help);
            f.add(Vec::new(), V::U(v));
            f
        };
        // like Kafka, the cluster-wide counts come from the active
        // controller only (0 elsewhere), so a sum over brokers is right
        let on_active = |v: u64| if active { v } else { 0 };
        let all_partitions = || image.topics.values().flat_map(|t| t.partitions.iter());
        let offline = all_partitions().filter(|p| p.leader < 0).count() as u64;
        let imbalance = all_partitions()
            .filter(|p| p.leader >= 0 && p.replicas.first() != Some(&p.leader))
            .count() as u64;
        let partitions = all_partitions().count() as u64;
        let fenced = image.brokers.values().filter(|b| b.fenced).count() as u64;
        let publisher = st.controller.publisher();
        let mut out = self.raft_metrics();
        out.extend(vec![
            gauge("kafka_controller_kafkacontroller_activecontrollercount", "1 on the active controller (KafkaController ActiveControllerCount).", active as u64),
            gauge("kafka_controller_kafkacontroller_offlinepartitionscount", "Partitions without a leader; active controller only (KafkaController OfflinePartitionsCount).", on_active(offline)),
            gauge("kafka_controller_kafkacontroller_preferredreplicaimbalancecount", "Partitions not led by their preferred replica; active controller only (KafkaController PreferredReplicaImbalanceCount).", on_active(imbalance)),
            gauge("kafka_controller_kafkacontroller_globaltopiccount", "Topics; active controller only (KafkaController GlobalTopicCount).", on_active(image.topics.len() as u64)),
            gauge("kafka_controller_kafkacontroller_globalpartitioncount", "Partitions; active controller only (KafkaController GlobalPartitionCount).", on_active(partitions)),
            gauge("kafka_controller_kafkacontroller_fencedbrokercount", "Registered brokers that are fenced; active controller only (KafkaController FencedBrokerCount).", on_active(fenced)),
            gauge("kafka_controller_kafkacontroller_activebrokercount", "Registered brokers that are not fenced; active controller only (KafkaController ActiveBrokerCount).", on_active(image.brokers.len() as u64 - fenced)),
            gauge("kafka_controller_kafkacontroller_lastcommittedrecordoffset", "The metadata log's committed offset as this node knows it (KafkaController LastCommittedRecordOffset).", publisher.committed()),
            gauge("kafka_controller_kafkacontroller_lastappliedrecordoffset", "The metadata offset this node's image includes (KafkaController LastAppliedRecordOffset); the lag is committed minus applied.", publisher.applied()),
        ]);
        out
    }

    /// The metadata quorum as a voter sees it (Kafka's raft-metrics, named
    /// as Strimzi's JMX exporter rules name them); nothing on a broker that
    /// is not a voter.
    fn raft_metrics(&self) -> Vec<Family> {
        let node = self.state.config.node_id;
        let q = self.state.controller.local_quorum_description();
        let Some(me) = q.voters.iter().find(|v| v.replica_id == node) else {
            return Vec::new();
        };
        let gauge = |name, help, v: i64| {
            let mut f = Family::new(name, MetricType::Gauge, help);
            f.add(Vec::new(), V::I(v));
            f
        };
        vec![
            gauge(
                "kafka_server_raftmetrics_log_end_offset",
                "The end offset of this voter's metadata log (raft-metrics log-end-offset).",
                me.log_end_offset,
            ),
            gauge(
                "kafka_server_raftmetrics_high_watermark",
                "The metadata log's committed offset on this voter (raft-metrics high-watermark).",
                q.high_watermark,
            ),
            gauge(
                "kafka_server_raftmetrics_current_leader",
                "The quorum leader this voter knows, -1 if none (raft-metrics current-leader).",
                q.leader_id as i64,
            ),
            gauge(
                "kafka_server_raftmetrics_current_epoch",
                "The quorum's epoch (Raft term) (raft-metrics current-epoch).",
                q.leader_epoch as i64,
            ),
        ]
    }

    fn group_metrics(&self) -> Vec<Family> {
        const CLASSIC: [(&str, &str, &str); 5] = [
            ("kafka_coordinator_group_groupmetadatamanager_numgroupsstable", "Stable", "Classic groups coordinated here in state Stable (GroupMetadataManager NumGroupsStable)."),
            ("kafka_coordinator_group_groupmetadatamanager_numgroupspreparingrebalance", "PreparingRebalance", "Classic groups coordinated here in state PreparingRebalance (GroupMetadataManager NumGroupsPreparingRebalance)."),
            ("kafka_coordinator_group_groupmetadatamanager_numgroupscompletingrebalance", "CompletingRebalance", "Classic groups coordinated here in state CompletingRebalance (GroupMetadataManager NumGroupsCompletingRebalance)."),
            ("kafka_coordinator_group_groupmetadatamanager_numgroupsempty", "Empty", "Classic groups coordinated here in state Empty (GroupMetadataManager NumGroupsEmpty)."),
            ("kafka_coordinator_group_groupmetadatamanager_numgroupsdead", "Dead", "Classic groups coordinated here in state Dead (GroupMetadataManager NumGroupsDead)."),
        ];
        let groups = self
            .state
            .group_coordinator
            .list_groups()
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut total = Family::new(
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            MetricType::Gauge,
            "Groups coordinated here, classic and consumer (GroupMetadataManager NumGroups).",
        );
        total.add(Vec::new(), V::U(groups.len() as u64));
        out.push(total);
        for (name, state, help) in CLASSIC {
            let n = groups
                .iter()
                .filter(|g| g.group_type == "classic" && g.state == state)
                .count();
            let mut f = Family::new(name, MetricType::Gauge, help);
            f.add(Vec::new(), V::U(n as u64));
            out.push(f);
        }
        let mut consumer = Family::new(
            "kafka_server_group_coordinator_metrics_consumer_group_count",
            MetricType::Gauge,
            "KIP-848 consumer groups coordinated here, by state (group-coordinator-metrics consumer-group-count).",
        );
        for state in ["Empty", "Assigning", "Reconciling", "Stable", "Dead"] {
            let n = groups
                .iter()
                .filter(|g| g.group_type == "consumer" && g.state == state)
                .count();
            consumer.add(l1("state", state.to_ascii_lowercase()), V::U(n as u64));
        }
        out.push(consumer);
        let (classic_rebalances, consumer_rebalances) =
            self.state.group_coordinator.rebalance_counts();
        let mut f = Family::new(
            "kafka_server_group_coordinator_metrics_group_completed_rebalance_count",
            MetricType::Gauge,
            "Rebalances completed by the classic groups coordinated here now (group-coordinator-metrics group-completed-rebalance-count; per group, so it drops when a group moves away).",
        );
        f.add(Vec::new(), V::U(classic_rebalances));
        out.push(f);
        let mut f = Family::new(
            "kafka_server_group_coordinator_metrics_consumer_group_rebalance_count",
            MetricType::Gauge,
            "Group epoch bumps (new target assignments) of the KIP-848 groups coordinated here now (group-coordinator-metrics consumer-group-rebalance-count).",
        );
        f.add(Vec::new(), V::U(consumer_rebalances));
        out.push(f);
        // kafka_exporter's names, so its dashboards and alerts work
        let mut lag = Family::new(
            "kafka_consumergroup_lag",
            MetricType::Gauge,
            "A group's lag on a partition: high watermark minus committed offset (kafka_exporter).",
        );
        let mut current = Family::new(
            "kafka_consumergroup_current_offset",
            MetricType::Gauge,
            "A group's committed offset on a partition (kafka_exporter).",
        );
        let mut lag_sum = Family::new(
            "kafka_consumergroup_lag_sum",
            MetricType::Gauge,
            "A group's lag summed over a topic's partitions (kafka_exporter).",
        );
        for g in &self.lags {
            let mut by_topic: std::collections::BTreeMap<&str, i64> = Default::default();
            for p in &g.partitions {
                let labels = vec![
                    ("consumergroup", g.group_id.clone()),
                    ("topic", p.topic.clone()),
                    ("partition", p.partition.to_string()),
                ];
                current.add(labels.clone(), V::I(p.committed_offset));
                if let Some(l) = p.lag {
                    lag.add(labels, V::I(l));
                    *by_topic.entry(&p.topic).or_default() += l;
                }
            }
            for (topic, sum) in by_topic {
                lag_sum.add(
                    vec![
                        ("consumergroup", g.group_id.clone()),
                        ("topic", topic.to_string()),
                    ],
                    V::I(sum),
                );
            }
        }
        out.extend([lag, current, lag_sum]);
        out
    }

    fn process_metrics(&self, m: &BrokerMetrics) -> Vec<Family> {
        let p = super::process::read();
        let mut out = Vec::new();
        let mut one = |name, ty, help, v: Option<V>| {
            if let Some(v) = v {
                let mut f = Family::new(name, ty, help);
                f.add(Vec::new(), v);
                out.push(f);
            }
        };
        use MetricType::{Counter, Gauge};
        one(
            "process_cpu_seconds",
            Counter,
            "User and system CPU time spent, in seconds.",
            p.cpu_seconds.map(V::F),
        );
        one(
            "process_resident_memory_bytes",
            Gauge,
            "Resident memory size in bytes.",
            p.resident_bytes.map(V::U),
        );
        one(
            "process_virtual_memory_bytes",
            Gauge,
            "Virtual memory size in bytes.",
            p.virtual_bytes.map(V::U),
        );
        one(
            "process_open_fds",
            Gauge,
            "Open file descriptors.",
            p.open_fds.map(V::U),
        );
        one(
            "process_max_fds",
            Gauge,
            "The limit of open file descriptors.",
            p.max_fds.map(V::U),
        );
        one(
            "process_threads",
            Gauge,
            "OS threads of the process.",
            p.threads.map(V::U),
        );
        let started = m
            .started
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .ok();
        one(
            "process_start_time_seconds",
            Gauge,
            "When the broker started, in seconds since the Unix epoch.",
            started.map(V::F),
        );
        one(
            "oxka_uptime_seconds",
            Gauge,
            "Seconds since the broker started.",
            m.started.elapsed().ok().map(|d| V::F(d.as_secs_f64())),
        );
        one(
            "kafka_server_kafkaserver_brokerstate",
            Gauge,
            "Kafka's BrokerState code: 3 RUNNING, 7 SHUTTING_DOWN (KafkaServer BrokerState).",
            Some(V::U(if self.serving { 3 } else { 7 })),
        );
        out
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.state.metrics;
        let (requests, hists) = self.request_metrics(m);
        let families = self
            .broker_topic_metrics()
            .into_iter()
            .chain(requests)
            .chain(self.network_metrics(m))
            .chain(self.log_and_replica_metrics())
            .chain(self.cleaner_metrics(m))
            .chain(self.controller_metrics())
            .chain(self.group_metrics())
            .chain(self.process_metrics(m));
        for f in families {
            f.encode(&mut enc)?;
        }
        for h in &hists {
            h.encode(&mut enc)?;
        }
        const FLUSH_HELP: &str = "Milliseconds of each log flush (fsync of a partition's unsynced segments), this process (LogFlushStats LogFlushRateAndTimeMs).";
        let flushes = &oxka_log::latency::LOG_FLUSH_TIME;
        let snapshot = flushes.snapshot();
        let mut timer =
            TimerFamilies::new("kafka_log_logflushstats_logflushrateandtimems", FLUSH_HELP);
        timer.add(Vec::new(), flushes, snapshot.count);
        for f in timer.into_families() {
            f.encode(&mut enc)?;
        }
        HistogramFamily {
            name: "oxka_log_logflushstats_logflushrateandtimems",
            help: FLUSH_HELP,
            samples: vec![(Vec::new(), snapshot)],
        }
        .encode(&mut enc)?;
        // build info: an OpenMetrics info metric (`oxka_build_info 1` in
        // the Prometheus format)
        let mut info = enc.encode_descriptor(
            "oxka_build",
            "The oxka version this broker runs.",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&vec![
            ("version", env!("CARGO_PKG_VERSION").to_string()),
            ("node_id", self.state.config.node_id.to_string()),
            ("cluster_id", self.state.cluster_id.clone()),
        ])?;
        Ok(())
    }
}

/// The whole exposition in OpenMetrics text (ends with `# EOF`).
pub fn render_openmetrics(scrape: Scrape) -> Result<String, std::fmt::Error> {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(64 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// OpenMetrics text as Prometheus' text format 0.0.4: a counter family
/// takes its samples' `_total` name in HELP and TYPE, an info family
/// becomes a gauge named `<name>_info`, `# UNIT` and `# EOF` go. Samples,
/// labels, histograms and escaping are the same in both.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut pending_help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            // written once the TYPE line says what the family is
            pending_help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, ty) = match ty {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((_, help)) = pending_help.take() {
                out.push_str(&format!("# HELP {name} {help}\n"));
            }
            out.push_str(&format!("# TYPE {name} {ty}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
    }

    #[test]
    fn openmetrics_to_prometheus_text() {
        let om = "# HELP a_b Some help.\n# TYPE a_b counter\na_b_total{topic=\"t\"} 3\n\
                  # HELP g A gauge.\n# TYPE g gauge\ng 1\n\
                  # HELP oxka_build Build.\n# TYPE oxka_build info\noxka_build_info{version=\"1\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_b_total Some help.\n# TYPE a_b_total counter\na_b_total{topic=\"t\"} 3\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 1\n\
             # HELP oxka_build_info Build.\n# TYPE oxka_build_info gauge\noxka_build_info{version=\"1\"} 1\n"
        );
    }
}
