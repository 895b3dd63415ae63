//! `oxka produce TOPIC`: one record per input line, from stdin or a file.
//!
//! Lines are split on `\n` only and kept byte for byte (no UTF-8
//! requirement, a `\r` stays), so `oxka consume` prints back exactly what
//! went in. Records are queued without waiting for each acknowledgement;
//! a bounded window of pending acknowledgements keeps memory flat on large
//! files while the producer batches.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use oxka_client::producer::DeliveryFuture;
use oxka_client::{Producer, ProducerRecord};
use serde_json::json;

use super::util::{names, parse_kv, print_json, Progress};
use super::{explain, CliError, CliResult, ClientOpts, Output};

/// Acknowledgements awaited at most at once.
const WINDOW: usize = 10_000;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Topic to write to.
    name: Vec<String>,
    #[arg(long)]
    topic: Option<String>,
    /// Read lines from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value.
    #[arg(short = 'k', long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Header key=value added to every record (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Write every record to this partition.
    #[arg(short, long)]
    partition: Option<i32>,
    /// all, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(short = 'z', long = "compression", value_name = "CODEC")]
    compression: Option<String>,
    /// linger.ms for batching.
    #[arg(long)]
    linger_ms: Option<u64>,
}

pub async fn run(args: ProduceArgs) -> CliResult {
    let topic_list = names(&args.name, &args.topic);
    let topic = match topic_list.as_slice() {
        [t] => t.clone(),
        [] => return Err(CliError::Usage("name the topic: oxka produce TOPIC".into())),
        _ => return Err(CliError::Usage("produce writes to one topic".into())),
    };
    if args.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage("--key-separator must not be empty".into()));
    }
    let headers = parse_kv(&args.headers, "--header")?;
    let mut cfg = args.opts.client_config()?;
    cfg.set("acks", &args.acks);
    if let Some(c) = &args.compression {
        cfg.set("compression.type", c);
    }
    if let Some(l) = args.linger_ms {
        cfg.set("linger.ms", l.to_string());
    }
    let producer = Producer::new(&cfg).map_err(|e| CliError::Usage(e.to_string()))?;
    await_topic(&producer, &topic).await?;

    let (reader, total): (Box<dyn Read + Send>, u64) = match &args.file {
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| CliError::Failed(format!("cannot open {}: {e}", p.display())))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(f), len)
        }
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading records from the terminal, one per line; Ctrl-D to finish");
            }
            (Box::new(std::io::stdin()), 0)
        }
    };
    // File reads block: do them on a blocking thread, handing lines over a
    // bounded channel.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(1024);
    let reader_task = tokio::task::spawn_blocking(move || {
        let mut r = BufReader::with_capacity(1 << 16, reader);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });

    let mut progress = Progress::new(if total > 1 << 20 { total } else { 0 });
    let mut pending: VecDeque<DeliveryFuture> = VecDeque::new();
    let (mut sent, mut bytes_in, mut line_no) = (0u64, 0u64, 0u64);
    let mut first_error: Option<String> = None;
    let mut failed = 0u64;
    let sep = args.key_separator.as_deref().map(str::as_bytes);
    // Why reading stopped early (the line at fault), reported once what
    // was queued before it is acknowledged.
    let mut stopped: Option<String> = None;
    while let Some(line) = rx.recv().await {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                stopped = Some(format!("reading line {}: {e}", line_no + 1));
                break;
            }
        };
        line_no += 1;
        bytes_in += line.len() as u64 + 1;
        let mut rec = ProducerRecord::new(&topic);
        match sep {
            Some(sep) => match find(&line, sep) {
                Some(i) => {
                    rec.key = Some(Bytes::copy_from_slice(&line[..i]));
                    rec.value = Some(Bytes::copy_from_slice(&line[i + sep.len()..]));
                }
                None => {
                    // Stop reading; what was queued is still delivered (and
                    // awaited) below before the line is reported.
                    stopped = Some(format!(
                        "line {line_no} has no key separator `{}`",
                        String::from_utf8_lossy(sep)
                    ));
                    break;
                }
            },
            None => rec.value = Some(Bytes::from(line)),
        }
        for (k, v) in &headers {
            rec = rec.header(k.clone(), v.clone());
        }
        rec.partition = args.partition;
        match producer.enqueue(rec).await {
            Ok(f) => pending.push_back(f),
            Err(e) => {
                stopped = Some(format!("line {line_no}: {}", explain(&e)));
                break;
            }
        }
        sent += 1;
        while pending.len() >= WINDOW {
            if let Some(f) = pending.pop_front() {
                if let Err(e) = f.await {
                    failed += 1;
                    first_error.get_or_insert_with(|| explain(&e));
                }
            }
        }
        progress.update(bytes_in, sent);
    }
    drop(rx);
    if stopped.is_none() {
        let _ = reader_task.await;
    }
    // else the reader may wait on stdin for ever: left behind (the runtime
    // shuts down without waiting for it)
    for f in pending {
        if let Err(e) = f.await {
            failed += 1;
            first_error.get_or_insert_with(|| explain(&e));
        }
    }
    producer.close().await?;
    progress.finish();
    if args.opts.output == Output::Json {
        print_json(&json!({"topic": topic, "records": sent - failed, "failed": failed}));
    } else if std::io::stderr().is_terminal() {
        eprintln!("produced {} record(s) to {topic}", sent - failed);
    }
    if let Some(why) = stopped {
        return Err(CliError::Failed(format!(
            "{why}: stopped there; the {} record(s) before it were acknowledged{}",
            sent - failed,
            match &first_error {
                Some(e) => format!(", {failed} failed (first: {e})"),
                None => String::new(),
            }
        )));
    }
    match first_error {
        Some(e) => Err(CliError::Failed(format!(
            "{failed} of {sent} record(s) failed; first: {e}"
        ))),
        None => Ok(()),
    }
}

/// How long the CLI waits for a topic to exist (the broker auto-creating
/// it) before saying so: a typo should not hang for `max.block.ms`.
const TOPIC_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until `topic` has partitions. The producer's metadata requests
/// allow auto-creation, as Java's producer's do, so a broker with
/// `auto.create.topics.enable=true` (Kafka's default) creates it.
pub async fn await_topic(producer: &Producer, topic: &str) -> CliResult<i32> {
    match tokio::time::timeout(TOPIC_WAIT, producer.partitions(topic)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(CliError::Failed(format!(
            "topic `{topic}` does not exist and the broker did not create it within {TOPIC_WAIT:?}\nhint: create it with `oxka topics create {topic}` (or set auto.create.topics.enable=true on the broker)"
        ))),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
