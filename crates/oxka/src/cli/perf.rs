//! `oxka perf produce | consume | e2e`: load generators with the flags and
//! the output of Kafka's `kafka-producer-perf-test`,
//! `kafka-consumer-perf-test` and `EndToEndLatency`, built on `oxka-client`
//! so the same numbers can be taken against oxka or any Kafka broker.
//!
//! Latencies go into HdrHistograms (microsecond resolution, 3 significant
//! digits, bounded at one hour), so memory stays a few tens of KiB however
//! many records are sent; percentiles are exact to 0.1%.
//!
//! Per-record produce latency is the acknowledgement time minus the time the
//! record was handed to the producer. Acknowledgements are awaited in send
//! order by one collector task: within a partition they complete in order
//! anyway; across partitions a late batch can delay the observation of a
//! later one, so with many partitions the figure is an upper bound.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use oxka_client::producer::DeliveryFuture;
use oxka_client::{Admin, ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};
use serde_json::json;

use super::util::{format_timestamp, parse_kv, print_json};
use super::{explain, CliError, CliResult, ClientOpts, Output};

/// Records whose acknowledgement may be outstanding at once: bounds the
/// memory the collector's queue holds (the producer's `buffer.memory`
/// bounds the bytes).
const ACK_WINDOW: usize = 100_000;
/// Largest latency the histograms hold, in microseconds (one hour); larger
/// values are clamped rather than dropped.
const MAX_LATENCY_US: u64 = 3_600_000_000;
/// Kafka's perf tools report in MB of 2^20 bytes.
const MB: f64 = 1024.0 * 1024.0;

#[derive(Args, Debug)]
pub struct PerfArgs {
    #[command(subcommand)]
    cmd: PerfCmd,
}

#[derive(Subcommand, Debug)]
enum PerfCmd {
    /// Produce records as fast as allowed and report throughput and
    /// acknowledgement latency (kafka-producer-perf-test).
    Produce(ProducePerfArgs),
    /// Consume records and report throughput (kafka-consumer-perf-test).
    Consume(ConsumePerfArgs),
    /// Produce at a fixed rate while consuming, and report produce-to-consume
    /// latency percentiles.
    E2e(E2eArgs),
}

#[derive(Args, Debug)]
pub struct ProducePerfArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// Topic to produce to (must exist).
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Size of each record's value in bytes.
    #[arg(long = "record-size", default_value_t = 1024)]
    record_size: usize,
    /// Records per second at most; -1 for no limit.
    #[arg(long, allow_hyphen_values = true)]
    throughput: f64,
    /// Producer properties key=value (e.g. acks=1 linger.ms=5).
    #[arg(long = "producer-props", num_args = 1.., value_name = "KEY=VALUE")]
    producer_props: Vec<String>,
    /// Producer properties file.
    #[arg(
        long = "producer.config",
        alias = "producer-config",
        value_name = "FILE"
    )]
    producer_config: Option<std::path::PathBuf>,
    /// Interval between the running report lines, in ms.
    #[arg(long = "reporting-interval", default_value_t = 5000)]
    reporting_interval: u64,
}

#[derive(Args, Debug)]
pub struct ConsumePerfArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// Topic to consume.
    #[arg(long)]
    topic: String,
    /// Number of records to consume.
    #[arg(long = "num-records", alias = "messages")]
    num_records: u64,
    /// Join this group (subscribe) instead of reading every partition
    /// directly (assign, no group coordination).
    #[arg(long)]
    group: Option<String>,
    /// Give up after this many ms without a record.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Start at the log end instead of the beginning.
    #[arg(long = "from-latest")]
    from_latest: bool,
    /// Do not print the CSV header line.
    #[arg(long = "hide-header")]
    hide_header: bool,
    /// Consumer properties key=value.
    #[arg(long = "consumer-props", num_args = 1.., value_name = "KEY=VALUE")]
    consumer_props: Vec<String>,
    /// Consumer properties file.
    #[arg(
        long = "consumer.config",
        alias = "consumer-config",
        value_name = "FILE"
    )]
    consumer_config: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct E2eArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// Topic to produce to and consume from (must exist).
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Size of each record's value in bytes (at least 8: the send time).
    #[arg(long = "record-size", default_value_t = 1024)]
    record_size: usize,
    /// Records per second (a fixed rate: latency is only meaningful below
    /// saturation); -1 for no limit.
    #[arg(long, allow_hyphen_values = true)]
    throughput: f64,
    /// Producer properties key=value (default linger.ms=0).
    #[arg(long = "producer-props", num_args = 1.., value_name = "KEY=VALUE")]
    producer_props: Vec<String>,
    /// Consumer properties key=value.
    #[arg(long = "consumer-props", num_args = 1.., value_name = "KEY=VALUE")]
    consumer_props: Vec<String>,
    /// Give up after this many ms without a record.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
}

pub async fn run(args: PerfArgs) -> CliResult {
    match args.cmd {
        PerfCmd::Produce(a) => produce(a).await,
        PerfCmd::Consume(a) => consume(a).await,
        PerfCmd::E2e(a) => e2e(a).await,
    }
}

/// Client config: --command-config and -X, then the tool's properties
/// file, then its key=value properties, then an explicit
/// --bootstrap-server (which wins, as on the other subcommands).
fn build_config(
    opts: &ClientOpts,
    file: Option<&std::path::Path>,
    props: &[String],
    what: &str,
) -> CliResult<ClientConfig> {
    let mut cfg = opts.client_config()?;
    if cfg.get("client.id") == Some("oxka-cli") {
        cfg.set("client.id", "oxka-perf");
    }
    if let Some(p) = file {
        let f =
            ClientConfig::from_properties_file(p).map_err(|e| CliError::Usage(e.to_string()))?;
        cfg.merge(&f);
    }
    for (k, v) in parse_kv(props, what)? {
        cfg.set(k, v);
    }
    if let Some(b) = &opts.bootstrap_server {
        cfg.set("bootstrap.servers", b.clone());
    }
    Ok(cfg)
}

fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known to be valid (low >= 1, high >= 2 * low,
    // sigfig <= 5), so this cannot fail at run time.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// Spaces sends so that at most `rate` records per second go out, like
/// Kafka's `ThroughputThrottler`: it sleeps only when ahead of schedule, so
/// bursts after a stall catch up rather than lose the rate.
struct Throttle {
    rate: f64,
    start: Instant,
}

impl Throttle {
    fn new(rate: f64) -> Throttle {
        Throttle {
            rate,
            start: Instant::now(),
        }
    }

    async fn wait(&self, sent: u64) {
        if self.rate <= 0.0 {
            return;
        }
        let due = self.start + Duration::from_secs_f64(sent as f64 / self.rate);
        if due > Instant::now() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        }
    }
}

/// Running statistics: totals for the summary plus a window for the
/// periodic lines.
struct Stats {
    start: Instant,
    hist: Histogram<u64>,
    count: u64,
    bytes: u64,
    total_us: u128,
    max_us: u64,
    interval: Duration,
    window_start: Instant,
    window_count: u64,
    window_bytes: u64,
    window_total_us: u128,
    window_max_us: u64,
}

impl Stats {
    fn new(interval: Duration) -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            hist: new_histogram(),
            count: 0,
            bytes: 0,
            total_us: 0,
            max_us: 0,
            interval,
            window_start: now,
            window_count: 0,
            window_bytes: 0,
            window_total_us: 0,
            window_max_us: 0,
        }
    }

    fn record(&mut self, latency: Duration, bytes: usize, verb: &str) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        self.hist.saturating_record(us);
        self.count += 1;
        self.bytes += bytes as u64;
        self.total_us += us as u128;
        self.max_us = self.max_us.max(us);
        self.window_count += 1;
        self.window_bytes += bytes as u64;
        self.window_total_us += us as u128;
        self.window_max_us = self.window_max_us.max(us);
        if !self.interval.is_zero() && self.window_start.elapsed() >= self.interval {
            self.print_window(verb);
        }
    }

    fn print_window(&mut self, verb: &str) {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let n = self.window_count.max(1) as f64;
        outln!(
            "{} records {verb}, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            self.window_count,
            self.window_count as f64 / secs,
            self.window_bytes as f64 / MB / secs,
            self.window_total_us as f64 / n / 1000.0,
            self.window_max_us as f64 / 1000.0,
        );
        self.window_start = Instant::now();
        self.window_count = 0;
        self.window_bytes = 0;
        self.window_total_us = 0;
        self.window_max_us = 0;
    }

    /// The summary line, Kafka's format with fractional-ms percentiles.
    fn summary(&self, verb: &str, output: Output, extra: serde_json::Value) {
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let ms = |us: u64| us as f64 / 1000.0;
        let p = |q: f64| ms(self.hist.value_at_quantile(q));
        let avg = self.total_us as f64 / self.count.max(1) as f64 / 1000.0;
        let rps = self.count as f64 / secs;
        let mbps = self.bytes as f64 / MB / secs;
        match output {
            Output::Json => {
                let mut v = json!({
                    "records": self.count,
                    "records_per_sec": rps,
                    "mb_per_sec": mbps,
                    "avg_latency_ms": avg,
                    "max_latency_ms": ms(self.max_us),
                    "p50_ms": p(0.50),
                    "p95_ms": p(0.95),
                    "p99_ms": p(0.99),
                    "p999_ms": p(0.999),
                });
                if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
                    o.extend(e);
                }
                print_json(&v);
            }
            Output::Text => outln!(
                "{} records {verb}, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {:.3} ms 50th, {:.3} ms 95th, {:.3} ms 99th, {:.3} ms 99.9th.",
                self.count, rps, mbps, avg, ms(self.max_us), p(0.50), p(0.95), p(0.99), p(0.999)
            ),
        }
    }
}

/// A value of `size` random upper-case letters, as Kafka's tool sends
/// (compressible like text, not like zeros).
fn payload(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// What the acknowledgement collector hands back when the input ends.
struct Acks {
    stats: Stats,
    failed: u64,
    first_error: Option<String>,
}

/// Awaits acknowledgements in send order and records their latency.
fn spawn_collector(
    mut rx: tokio::sync::mpsc::Receiver<(Instant, usize, DeliveryFuture)>,
    interval: Duration,
) -> tokio::task::JoinHandle<Acks> {
    tokio::spawn(async move {
        let mut acks = Acks {
            stats: Stats::new(interval),
            failed: 0,
            first_error: None,
        };
        while let Some((sent_at, size, fut)) = rx.recv().await {
            match fut.await {
                Ok(_) => acks.stats.record(sent_at.elapsed(), size, "sent"),
                Err(e) => {
                    acks.failed += 1;
                    acks.first_error.get_or_insert_with(|| explain(&e));
                }
            }
        }
        acks
    })
}

/// Sends `n` records at `rate`; `stamp` writes the send time into the
/// value when end-to-end latency is measured.
async fn send_all(
    producer: &Producer,
    topic: &str,
    n: u64,
    size: usize,
    rate: f64,
    stamp: Option<Instant>,
    tx: tokio::sync::mpsc::Sender<(Instant, usize, DeliveryFuture)>,
) -> CliResult {
    let template = Bytes::from(payload(size));
    let throttle = Throttle::new(rate);
    for i in 0..n {
        throttle.wait(i).await;
        let value = match stamp {
            Some(base) => {
                let mut v = template.to_vec();
                let ns = base.elapsed().as_nanos() as u64;
                v[..8].copy_from_slice(&ns.to_be_bytes());
                Bytes::from(v)
            }
            None => template.clone(),
        };
        let rec = ProducerRecord {
            topic: topic.to_string(),
            value: Some(value),
            ..Default::default()
        };
        let sent_at = Instant::now();
        let fut = producer.enqueue(rec).await?;
        if tx.send((sent_at, size, fut)).await.is_err() {
            return Err(CliError::Failed("acknowledgement collector stopped".into()));
        }
    }
    Ok(())
}

async fn partitions_of(cfg: &ClientConfig, topic: &str) -> CliResult<Vec<TopicPartition>> {
    let admin = Admin::new(cfg)?;
    let info = admin.describe_topic(topic).await?;
    Ok(info
        .partitions
        .iter()
        .map(|p| TopicPartition::new(topic, p.id))
        .collect())
}

fn check_rate(rate: f64) -> CliResult {
    if rate == 0.0 || rate.is_nan() || (rate < 0.0 && rate != -1.0) {
        return Err(CliError::Usage(
            "--throughput: records per second > 0, or -1 for no limit".into(),
        ));
    }
    Ok(())
}

async fn produce(a: ProducePerfArgs) -> CliResult {
    check_rate(a.throughput)?;
    let cfg = build_config(
        &a.opts,
        a.producer_config.as_deref(),
        &a.producer_props,
        "--producer-props",
    )?;
    let producer = Producer::new(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    // The topic exists (auto-created if need be) before the clock starts.
    super::produce::await_topic(&producer, &a.topic).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(ACK_WINDOW);
    let collector = spawn_collector(rx, Duration::from_millis(a.reporting_interval));
    let sent = send_all(
        &producer,
        &a.topic,
        a.num_records,
        a.record_size,
        a.throughput,
        None,
        tx,
    )
    .await;
    let flushed = producer.flush().await;
    let acks = collector
        .await
        .map_err(|e| CliError::Failed(format!("collector: {e}")))?;
    let _ = producer.close().await;
    acks.stats
        .summary("sent", a.opts.output, json!({"failed": acks.failed}));
    sent?;
    flushed?;
    match acks.first_error {
        Some(e) => Err(CliError::Failed(format!(
            "{} record(s) failed; first error: {e}",
            acks.failed
        ))),
        None => Ok(()),
    }
}

async fn consume(a: ConsumePerfArgs) -> CliResult {
    let mut cfg = build_config(
        &a.opts,
        a.consumer_config.as_deref(),
        &[],
        "--consumer-props",
    )?;
    let reset = if a.from_latest { "latest" } else { "earliest" };
    if cfg.get("auto.offset.reset").is_none() {
        cfg.set("auto.offset.reset", reset);
    }
    match &a.group {
        Some(g) => {
            cfg.set("group.id", g.clone());
        }
        None => {
            cfg.remove("group.id");
            cfg.set("enable.auto.commit", "false");
        }
    }
    for (k, v) in parse_kv(&a.consumer_props, "--consumer-props")? {
        cfg.set(k, v);
    }
    let tps = partitions_of(&cfg, &a.topic).await?;
    let mut consumer = Consumer::new(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let start_ms = oxka_now_ms();
    let start = Instant::now();
    if a.group.is_some() {
        consumer.subscribe(&[a.topic.as_str()])?;
    } else {
        consumer.assign(tps.clone())?;
        if a.from_latest {
            consumer.seek_to_end(&tps).await?;
        } else {
            consumer.seek_to_beginning(&tps).await?;
        }
    }
    let idle = Duration::from_millis(a.timeout.max(1));
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut first_at: Option<Instant> = None;
    let mut last_at = Instant::now();
    let mut timed_out = false;
    while count < a.num_records {
        let recs = consumer.poll(idle.min(Duration::from_secs(1))).await?;
        if recs.is_empty() {
            if last_at.elapsed() >= idle {
                timed_out = true;
                break;
            }
            continue;
        }
        last_at = Instant::now();
        first_at.get_or_insert(last_at);
        for r in &recs {
            count += 1;
            bytes += r.key.as_ref().map_or(0, |k| k.len()) as u64
                + r.value.as_ref().map_or(0, |v| v.len()) as u64;
        }
    }
    let end = Instant::now();
    let end_ms = oxka_now_ms();
    let _ = consumer.close_without_commit().await;
    let total = end.duration_since(start).as_secs_f64().max(1e-9);
    let rebalance = first_at.map_or(total, |f| f.duration_since(start).as_secs_f64());
    let fetch = (total - rebalance).max(1e-9);
    let mb = bytes as f64 / MB;
    match a.opts.output {
        Output::Json => print_json(&json!({
            "records": count,
            "mb": mb,
            "records_per_sec": count as f64 / total,
            "mb_per_sec": mb / total,
            "rebalance_time_ms": rebalance * 1000.0,
            "fetch_time_ms": fetch * 1000.0,
            "fetch_mb_per_sec": mb / fetch,
            "fetch_records_per_sec": count as f64 / fetch,
        })),
        Output::Text => {
            if !a.hide_header {
                outln!("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec");
            }
            outln!(
                "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
                format_timestamp(start_ms),
                format_timestamp(end_ms),
                mb,
                mb / total,
                count,
                count as f64 / total,
                (rebalance * 1000.0) as u64,
                (fetch * 1000.0) as u64,
                mb / fetch,
                count as f64 / fetch,
            );
            outln!(
                "{count} records received, {:.1} records/sec ({:.2} MB/sec).",
                count as f64 / total,
                mb / total
            );
        }
    }
    if timed_out {
        return Err(CliError::Failed(format!(
            "exiting before consuming the expected number of records: {count} of {} in time ({} ms without a record)",
            a.num_records, a.timeout
        )));
    }
    Ok(())
}

fn oxka_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn e2e(a: E2eArgs) -> CliResult {
    check_rate(a.throughput)?;
    if a.record_size < 8 {
        return Err(CliError::Usage(
            "--record-size must be at least 8 (the send time is in the value)".into(),
        ));
    }
    let mut pcfg = build_config(&a.opts, None, &[], "--producer-props")?;
    pcfg.set("linger.ms", "0");
    for (k, v) in parse_kv(&a.producer_props, "--producer-props")? {
        pcfg.set(k, v);
    }
    let mut ccfg = build_config(&a.opts, None, &[], "--consumer-props")?;
    ccfg.remove("group.id");
    ccfg.set("enable.auto.commit", "false");
    ccfg.set("auto.offset.reset", "latest");
    for (k, v) in parse_kv(&a.consumer_props, "--consumer-props")? {
        ccfg.set(k, v);
    }
    let tps = partitions_of(&pcfg, &a.topic).await?;
    let mut consumer = Consumer::new(&ccfg).map_err(|e| CliError::Usage(e.to_string()))?;
    consumer.assign(tps.clone())?;
    // Positions are fixed before the first send, so every record we send
    // is one we read, and nothing older is.
    consumer.seek_to_end(&tps).await?;
    let base = Instant::now();
    let n = a.num_records;
    let idle = Duration::from_millis(a.timeout.max(1));
    let reader = tokio::spawn(async move {
        let mut hist = new_histogram();
        let (mut got, mut total_us, mut max_us) = (0u64, 0u128, 0u64);
        let mut last_at = Instant::now();
        let mut err: Option<String> = None;
        while got < n {
            let recs = match consumer.poll(Duration::from_millis(200)).await {
                Ok(r) => r,
                Err(e) => {
                    err = Some(explain(&e));
                    break;
                }
            };
            let now_ns = base.elapsed().as_nanos() as u64;
            if recs.is_empty() {
                if last_at.elapsed() >= idle {
                    break;
                }
                continue;
            }
            last_at = Instant::now();
            for r in &recs {
                let Some(v) = r.value.as_ref().filter(|v| v.len() >= 8) else {
                    continue; // not ours
                };
                let mut b = [0u8; 8];
                b.copy_from_slice(&v[..8]);
                let us =
                    (now_ns.saturating_sub(u64::from_be_bytes(b)) / 1000).clamp(1, MAX_LATENCY_US);
                hist.saturating_record(us);
                got += 1;
                total_us += us as u128;
                max_us = max_us.max(us);
            }
        }
        let _ = consumer.close_without_commit().await;
        (hist, got, total_us, max_us, err)
    });

    let producer = Producer::new(&pcfg).map_err(|e| CliError::Usage(e.to_string()))?;
    let (tx, rx) = tokio::sync::mpsc::channel(ACK_WINDOW);
    let collector = spawn_collector(rx, Duration::ZERO);
    let sent = send_all(
        &producer,
        &a.topic,
        n,
        a.record_size,
        a.throughput,
        Some(base),
        tx,
    )
    .await;
    let flushed = producer.flush().await;
    let acks = collector
        .await
        .map_err(|e| CliError::Failed(format!("collector: {e}")))?;
    let _ = producer.close().await;
    sent?;
    flushed?;
    let (hist, got, total_us, max_us, err) = reader
        .await
        .map_err(|e| CliError::Failed(format!("consumer task: {e}")))?;
    let ms = |us: u64| us as f64 / 1000.0;
    let p = |q: f64| ms(hist.value_at_quantile(q));
    let avg = total_us as f64 / got.max(1) as f64 / 1000.0;
    let secs = acks.stats.start.elapsed().as_secs_f64().max(1e-9);
    match a.opts.output {
        Output::Json => print_json(&json!({
            "records": got,
            "sent": acks.stats.count,
            "records_per_sec": acks.stats.count as f64 / secs,
            "avg_latency_ms": avg,
            "max_latency_ms": ms(max_us),
            "p50_ms": p(0.50),
            "p95_ms": p(0.95),
            "p99_ms": p(0.99),
            "p999_ms": p(0.999),
        })),
        Output::Text => {
            outln!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec) offered.",
                acks.stats.count,
                acks.stats.count as f64 / secs,
                acks.stats.bytes as f64 / MB / secs
            );
            outln!(
                "{got} records received, end-to-end {avg:.2} ms avg latency, {:.2} ms max latency, {:.3} ms 50th, {:.3} ms 95th, {:.3} ms 99th, {:.3} ms 99.9th.",
                ms(max_us), p(0.50), p(0.95), p(0.99), p(0.999)
            );
        }
    }
    if let Some(e) = err {
        return Err(CliError::Failed(format!("consuming: {e}")));
    }
    if let Some(e) = acks.first_error {
        return Err(CliError::Failed(format!(
            "{} record(s) failed; first error: {e}",
            acks.failed
        )));
    }
    if got < n {
        return Err(CliError::Failed(format!(
            "received {got} of {n} records ({} ms without a record)",
            a.timeout
        )));
    }
    Ok(())
}
