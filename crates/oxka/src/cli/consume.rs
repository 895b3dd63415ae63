//! `oxka consume TOPIC`: print records, from the end by default (as rpk),
//! `--from-beginning` (as Kafka's console consumer), an offset or a time;
//! alone (manual assignment) or as a member of `--group`.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use oxka_client::{Consumer, ConsumerRecord, TopicPartition};
use serde_json::json;

use super::util::{format_timestamp, names, parse_timestamp};
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
    /// Start at this offset in every selected partition.
    #[arg(long, conflicts_with = "timestamp")]
    offset: Option<i64>,
    /// Start at the first record at/after this time (epoch ms or RFC 3339).
    #[arg(long)]
    timestamp: Option<String>,
    /// Exit after this many records.
    #[arg(short = 'n', long, alias = "num")]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long (ms).
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
            if let Some(o) = args.offset {
                for tp in &all {
                    c.seek(tp, o)?;
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
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result: CliResult = loop {
        if args.max_messages.is_some_and(|m| count >= m) {
            break Ok(());
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
        {
            break Ok(());
        }
        let records = tokio::select! {
            r = consumer.poll(Duration::from_millis(500)) => r,
            _ = &mut ctrl_c => break Ok(()),
        };
        let records = match records {
            Ok(r) => r,
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
    closed?;
    Ok(())
}
