//! `oxka consume TOPIC`: print records, from the end by default (as rpk),
//! `--from-beginning` (as Kafka's console consumer), an offset or a time;
//! alone (manual assignment) or as a member of `--group`.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use oxka_client::admin::OffsetSpec;
use oxka_client::{Consumer, ConsumerRecord, TopicPartition};
use serde_json::json;

use super::util::{format_timestamp, names, parse_timestamp, stop_signal};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Topic to read.
    name: Vec<String>,
    #[arg(long)]
    topic: Option<String>,
    /// Only these partitions (repeatable; default all).
    #[arg(short, long = "partition")]
    partitions: Vec<i32>,
    /// Consume as a member of this group (committing offsets).
    #[arg(short, long)]
    group: Option<String>,
    /// Start at the earliest offset (default: the end).
    #[arg(long, conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Start at this offset in every selected partition: N, `earliest`,
    /// `latest`, or -N for N records before the end (as kcat's `-o -N`).
    #[arg(long, conflicts_with = "timestamp", allow_hyphen_values = true)]
    offset: Option<String>,
    /// Start at the first record at/after this time (epoch ms or RFC 3339).
    #[arg(long)]
    timestamp: Option<String>,
    /// Exit after this many records.
    #[arg(short = 'n', long, alias = "num")]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long (ms); also bounds how long
    /// an unreachable broker is retried (default: for ever, as kcat).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %v value,
    /// %T timestamp (ms), %d timestamp (RFC 3339), %h headers (k=v,...),
    /// %% percent; \n \t \\ escapes.
    #[arg(short, long, default_value = "%v\\n")]
    format: String,
    /// Read only committed transactional records.
    #[arg(long)]
    read_committed: bool,
}

/// Renders one record with a format string.
pub fn render(fmt: &str, r: &ConsumerRecord, out: &mut Vec<u8>) {
    let mut chars = fmt.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.extend_from_slice(r.topic.as_bytes()),
                Some('p') => out.extend_from_slice(r.partition.to_string().as_bytes()),
                Some('o') => out.extend_from_slice(r.offset.to_string().as_bytes()),
                Some('k') => out.extend_from_slice(r.key.as_deref().unwrap_or_default()),
                Some('v') => out.extend_from_slice(r.value.as_deref().unwrap_or_default()),
                Some('T') => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                Some('d') => out.extend_from_slice(format_timestamp(r.timestamp).as_bytes()),
                Some('h') => {
                    for (i, h) in r.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(h.key.as_bytes());
                        out.push(b'=');
                        out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                    }
                }
                Some('%') => out.push(b'%'),
                Some(o) => {
                    out.push(b'%');
                    out.extend_from_slice(o.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('\\') => out.push(b'\\'),
                Some(o) => {
                    out.push(b'\\');
                    out.extend_from_slice(o.encode_utf8(&mut buf).as_bytes());
                }
                None => out.push(b'\\'),
            },
            c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
}

fn json_line(r: &ConsumerRecord, out: &mut Vec<u8>) {
    let s = |b: &Option<bytes::Bytes>| b.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
    let v = json!({
        "topic": r.topic, "partition": r.partition, "offset": r.offset, "timestamp": r.timestamp,
        "key": s(&r.key), "value": s(&r.value),
        "headers": r.headers.iter().map(|h| json!({"key": h.key, "value": s(&h.value)})).collect::<Vec<_>>(),
    });
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'\n');
}

pub async fn run(args: ConsumeArgs) -> CliResult {
    let topics = names(&args.name, &args.topic);
    if topics.is_empty() {
        return Err(CliError::Usage("name the topic: oxka consume TOPIC".into()));
    }
    if args.group.is_some()
        && (args.offset.is_some() || args.timestamp.is_some() || !args.partitions.is_empty())
    {
        return Err(CliError::Usage(
            "--group takes positions from the group's committed offsets; --offset, --timestamp and --partition work without --group".into(),
        ));
    }
    if topics.len() > 1 && args.group.is_none() && !args.partitions.is_empty() {
        return Err(CliError::Usage("--partition needs a single topic".into()));
    }
    let start_ts = args.timestamp.as_deref().map(parse_timestamp).transpose()?;
    let start_offset = args.offset.as_deref().map(parse_offset).transpose()?;
    let mut cfg = args.opts.client_config()?;
    cfg.set("allow.auto.create.topics", "false");
    if args.read_committed {
        cfg.set("isolation.level", "read_committed");
    }
    cfg.set(
        "auto.offset.reset",
        if args.from_beginning {
            "earliest"
        } else {
            "latest"
        },
    );
    let admin = oxka_client::Admin::new(&cfg)?;
    let mut all = Vec::new();
    for t in &topics {
        let info = admin.describe_topic(t).await?;
        for p in &info.partitions {
            if args.partitions.is_empty() || args.partitions.contains(&p.id) {
                all.push(TopicPartition::new(t, p.id));
            }
        }
    }
    for p in &args.partitions {
        if !all.iter().any(|tp| tp.partition == *p) {
            return Err(CliError::Usage(format!(
                "partition {p} does not exist in {}",
                topics[0]
            )));
        }
    }
    let mut consumer = match &args.group {
        Some(g) => {
            cfg.set("group.id", g);
            let mut c = Consumer::new(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            c.subscribe(&refs)?;
            c
        }
        None => {
            cfg.remove("group.id");
            let mut c = Consumer::new(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
            c.assign(all.clone())?;
            if let Some(o) = start_offset {
                match o {
                    Start::At(o) => {
                        for tp in &all {
                            c.seek(tp, o)?;
                        }
                    }
                    Start::Earliest => c.seek_to_beginning(&all).await?,
                    Start::Latest => c.seek_to_end(&all).await?,
                    Start::BeforeEnd(n) => {
                        let lo = admin.list_offsets(&all, OffsetSpec::Earliest).await?;
                        let hi = admin.list_offsets(&all, OffsetSpec::Latest).await?;
                        for tp in &all {
                            let (l, h) = (
                                lo.get(tp).copied().unwrap_or(0),
                                hi.get(tp).copied().unwrap_or(0),
                            );
                            c.seek(tp, h.saturating_sub(n).max(l))?;
                        }
                    }
                }
            } else if let Some(ts) = start_ts {
                c.seek_to_timestamp(&all, ts).await?;
            } else if args.from_beginning {
                c.seek_to_beginning(&all).await?;
            } else {
                c.seek_to_end(&all).await?;
            }
            c
        }
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut count = 0u64;
    let mut last_record = Instant::now();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut committed_exact = false;
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut stopped_by: Option<i32> = None;
    let mut backoff = Backoff::default();
    let result: CliResult = loop {
        if args.max_messages.is_some_and(|m| count >= m) {
            break Ok(());
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
        {
            break match backoff.last.take() {
                // the broker was still unreachable when the time ran out
                Some(e) => Err(CliError::Failed(format!("{e}; gave up after --timeout-ms"))),
                None => Ok(()),
            };
        }
        let records = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            code = &mut stop => {
                stopped_by = Some(code);
                break Ok(());
            }
        };
        let records = match records {
            Ok(r) => {
                backoff.reset();
                r
            }
            // A broker restarting or unreachable: wait and poll again, as
            // kcat and Kafka's console consumer do, within --timeout-ms.
            Err(e) if retriable(&e) => {
                let wait = backoff.next(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    code = &mut stop => {
                        stopped_by = Some(code);
                        break Ok(());
                    }
                }
            }
            Err(e) => break Err(e.into()),
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        buf.clear();
        let mut stop_at = None;
        for (i, r) in records.iter().enumerate() {
            if args.max_messages.is_some_and(|m| count >= m) {
                stop_at = Some(i);
                break;
            }
            if args.opts.output == Output::Json {
                json_line(r, &mut buf);
            } else {
                render(&args.format, r, &mut buf);
            }
            count += 1;
        }
        if let Some(i) = stop_at {
            // Commit only what was printed.
            if args.group.is_some() {
                let mut offs = std::collections::BTreeMap::new();
                for r in &records[..i] {
                    offs.insert(TopicPartition::new(&r.topic, r.partition), r.offset + 1);
                }
                for r in &records[i..] {
                    let tp = TopicPartition::new(&r.topic, r.partition);
                    offs.entry(tp).or_insert(r.offset);
                }
                let _ = consumer.commit_sync(Some(offs)).await;
                committed_exact = true;
            }
        }
        if let Err(e) = out.write_all(&buf).and_then(|_| out.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                break Ok(());
            }
            break Err(e.into());
        }
        if stop_at.is_some() {
            // Do not let close() commit past what was printed.
            break Ok(());
        }
    };
    let closed = if committed_exact {
        // Offsets were committed above, exactly up to the last printed record.
        consumer.close_without_commit().await
    } else {
        consumer.close().await
    };
    result?;
    if let Some(code) = stopped_by {
        // stopped by a signal, after a clean close: the shell's code for
        // it, as Kafka's console consumer (the JVM) exits
        return Err(CliError::Signal(code));
    }
    closed?;
    Ok(())
}

/// Where `--offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    At(i64),
    Earliest,
    Latest,
    /// This many records before the end.
    BeforeEnd(i64),
}

fn parse_offset(s: &str) -> CliResult<Start> {
    match s.trim() {
        "earliest" | "beginning" => Ok(Start::Earliest),
        "latest" | "end" => Ok(Start::Latest),
        n => match n.parse::<i64>() {
            Ok(o) if o >= 0 => Ok(Start::At(o)),
            Ok(o) => Ok(Start::BeforeEnd(o.saturating_neg())),
            Err(_) => Err(CliError::Usage(format!(
                "--offset `{s}`: expected an offset, -N (N before the end), earliest or latest"
            ))),
        },
    }
}

/// Errors a broker restart produces; the consumer reconnects on the next
/// poll.
fn retriable(e: &oxka_client::Error) -> bool {
    e.is_retriable() || matches!(e, oxka_client::Error::NoBrokers(_))
}

/// Waits between polls that failed: 100 ms doubling to 5 s; says once on
/// stderr that it is retrying, and again when the error changes.
#[derive(Default)]
struct Backoff {
    failures: u32,
    last: Option<String>,
}

impl Backoff {
    fn next(&mut self, e: &oxka_client::Error) -> Duration {
        let msg = e.to_string();
        if self.last.as_deref() != Some(msg.as_str()) {
            eprintln!("warning: {msg}; retrying");
            self.last = Some(msg);
        }
        self.failures += 1;
        Duration::from_millis(100u64 << self.failures.min(6)).min(Duration::from_secs(5))
    }

    fn reset(&mut self) {
        if self.failures > 0 {
            eprintln!("reconnected");
        }
        self.failures = 0;
        self.last = None;
    }
}
