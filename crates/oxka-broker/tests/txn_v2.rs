//! Transaction version 2 (KIP-890 part 2) through the full dispatch, with
//! the codec's own request types: no client library implements it (not
//! librdkafka, not kafka-python), so these are its tests. A transaction
//! version 2 client learns the feature from ApiVersions, sends no
//! AddPartitionsToTxn (Produce v12 adds the partition), and ends with
//! EndTxn v5, which bumps the epoch: the markers carry the new epoch and
//! nothing of the ended transaction can act on the next one. Older EndTxn
//! versions keep one epoch per producer session.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{call, state};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::record_batch::{batches, decode_records};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn create(name: &str, partitions: i32) -> uuid::Uuid {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(-1),
    ]);
    let resp: CreateTopicsResponse = call(ApiKey::CreateTopics, 7, &req);
    let t = &resp.topics[0];
    assert_eq!(t.error_code, 0, "create {name}");
    t.topic_id
}

/// The harness never runs the broker's serve loop, which loads the
/// coordinators; load them once here.
fn load_coordinators() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        // what clients' FindCoordinator does first: the internal topics
        // exist, so their partitions are led (and loaded) here
        state()
            .group_coordinator
            .ensure_offsets_topic()
            .expect("offsets topic");
        state()
            .txn_coordinator
            .ensure_topic()
            .expect("transaction state topic");
        state().group_coordinator.load().expect("groups load");
        state().txn_coordinator.load().expect("transactions load");
    });
}

/// InitProducerId for `tid`, waiting out the coordinator's load.
fn init(tid: &str) -> (i64, i16) {
    load_coordinators();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(tid))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp: InitProducerIdResponse = call(ApiKey::InitProducerId, 5, &req);
        if resp.error_code == ResponseError::CoordinatorLoadInProgress.code()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(resp.error_code, 0, "init {tid}");
        return (resp.producer_id.0, resp.producer_epoch);
    }
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, value: &str) -> Bytes {
    RecordBatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(true)
        .record(None, Some(value.as_bytes()), oxka_broker::server::now_ms())
        .build()
        .freeze()
}

/// One transactional batch to partition 0 of `topic`; the partition's
/// error code.
fn produce(version: i16, tid: &str, topic: &str, batch: Bytes) -> i16 {
    let req = ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(s(tid))))
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(Some(batch)),
            ])]);
    let resp: ProduceResponse = call(ApiKey::Produce, version, &req);
    resp.responses[0].partition_responses[0].error_code
}

/// EndTxn at `version`: (error code, producer id, epoch) of the answer.
fn end(version: i16, tid: &str, pid: i64, epoch: i16, commit: bool) -> (i16, i64, i16) {
    let req = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(tid)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let resp: EndTxnResponse = call(ApiKey::EndTxn, version, &req);
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

fn add_partition_v3(tid: &str, pid: i64, epoch: i16, topic: &str) -> i16 {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(tid)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![0]),
        ]);
    let resp: AddPartitionsToTxnResponse = call(ApiKey::AddPartitionsToTxn, 3, &req);
    resp.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn describe(tid: &str) -> describe_transactions_response::TransactionState {
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s(tid))]);
    let resp: DescribeTransactionsResponse = call(ApiKey::DescribeTransactions, 0, &req);
    resp.transaction_states[0].clone()
}

/// Everything in partition 0: (is control, producer epoch, values or, for
/// a marker, "COMMIT"/"ABORT"), and the partition's last stable offset and
/// high watermark.
struct Partition {
    batches: Vec<(bool, i16, Vec<String>)>,
    lso: i64,
    hw: i64,
}

fn read(topic_id: uuid::Uuid) -> Partition {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let req = FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_max_wait_ms(0)
            .with_isolation_level(0)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic_id(topic_id)
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = call(ApiKey::Fetch, 13, &req);
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        // a read stops at a segment's end: go on until the high watermark
        let before = out.len();
        for b in batches(p.records.as_deref().unwrap_or_default()) {
            let (h, raw) = b.expect("well-formed batch");
            let recs = decode_records(raw).expect("records decode");
            let values = if h.is_control() {
                let key = recs[0].key.clone().unwrap_or_default();
                vec![if key.get(3) == Some(&1) {
                    "COMMIT".to_string()
                } else {
                    "ABORT".to_string()
                }]
            } else {
                recs.iter()
                    .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
                    .collect()
            };
            out.push((h.is_control(), h.producer_epoch, values));
            offset = h.last_offset() + 1;
        }
        assert!(
            out.len() > before || offset >= p.high_watermark,
            "no progress at offset {offset}"
        );
        if offset >= p.high_watermark {
            return Partition {
                batches: out,
                lso: p.last_stable_offset,
                hw: p.high_watermark,
            };
        }
    }
}

fn markers(p: &Partition) -> Vec<(i16, String)> {
    p.batches
        .iter()
        .filter(|b| b.0)
        .map(|b| (b.1, b.2[0].clone()))
        .collect()
}

#[test]
fn api_versions_advertise_transaction_version_2() {
    let name = |f: &StrBytes| f.to_string();
    // v4: the supported range 0..2 and the finalized level 2
    let resp: ApiVersionsResponse = call(ApiKey::ApiVersions, 4, &ApiVersionsRequest::default());
    let sup: Vec<_> = resp
        .supported_features
        .iter()
        .map(|f| (name(&f.name), f.min_version, f.max_version))
        .collect();
    assert_eq!(sup, vec![("transaction.version".to_string(), 0, 2)]);
    let fin: Vec<_> = resp
        .finalized_features
        .iter()
        .map(|f| (name(&f.name), f.min_version_level, f.max_version_level))
        .collect();
    assert_eq!(fin, vec![("transaction.version".to_string(), 2, 2)]);
    assert!(resp.finalized_features_epoch >= 0);
    let end_txn = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::EndTxn as i16);
    assert_eq!(end_txn.map(|k| k.max_version), Some(5));
    // v3: a supported minimum of 0 is left out (KAFKA-17011), the
    // finalized level is there
    let resp: ApiVersionsResponse = call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(resp.supported_features.is_empty());
    assert_eq!(resp.finalized_features.len(), 1);
    assert_eq!(resp.finalized_features[0].max_version_level, 2);
    // librdkafka before 2.2 mis-skips tagged fields: it gets none
    let client = |version: &str| {
        ApiVersionsRequest::default()
            .with_client_software_name(s("librdkafka"))
            .with_client_software_version(s(version))
    };
    let resp: ApiVersionsResponse = call(ApiKey::ApiVersions, 3, &client("2.0.2"));
    assert!(resp.finalized_features.is_empty() && resp.finalized_features_epoch == -1);
    assert_eq!(resp.api_keys.len(), {
        let all: ApiVersionsResponse = call(ApiKey::ApiVersions, 3, &client("2.12.1"));
        assert_eq!(
            all.finalized_features.len(),
            1,
            "a fixed librdkafka gets them"
        );
        all.api_keys.len()
    });
}

#[test]
fn tv2_commit_bumps_the_epoch_and_the_markers_carry_it() {
    let topic = "tv2-commit";
    let id = create(topic, 1);
    let tid = "tv2-commit-tx";
    let (pid, e0) = init(tid);
    // no AddPartitionsToTxn: Produce v12 adds the partition
    assert_eq!(
        produce(12, tid, topic, txn_batch(pid, e0, 0, "a")),
        0,
        "v12 adds the partition itself"
    );
    let d = describe(tid);
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.topics.len(), 1);
    let before = read(id);
    assert_eq!(before.lso, 0, "the open transaction holds read_committed");
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    let after = read(id);
    assert_eq!(
        markers(&after),
        vec![(e0 + 1, "COMMIT".to_string())],
        "the marker carries the bumped epoch"
    );
    assert_eq!(after.lso, after.hw, "committed: all of it is stable");
    assert_eq!(after.batches[0], (false, e0, vec!["a".to_string()]));
    let d = describe(tid);
    assert_eq!(d.transaction_state.as_str(), "CompleteCommit");
    assert_eq!(d.producer_epoch, e0 + 1);
    // the next transaction runs at the new epoch, sequences from 0
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e0 + 1, 0, "b")), 0);
    assert_eq!(end(5, tid, pid, e0 + 1, false), (0, pid, e0 + 2));
    let last = read(id);
    assert_eq!(
        markers(&last),
        vec![
            (e0 + 1, "COMMIT".to_string()),
            (e0 + 2, "ABORT".to_string())
        ]
    );
}

#[test]
fn tv2_late_end_txn_cannot_touch_the_next_transaction() {
    let topic = "tv2-late";
    let id = create(topic, 1);
    let tid = "tv2-late-tx";
    let (pid, e0) = init(tid);
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e0, 0, "t1")), 0);
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    // transaction 2 is open at e0 + 1
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e0 + 1, 0, "t2")), 0);
    let fenced = ResponseError::ProducerFenced.code();
    // a late commit or abort of transaction 1 (its epoch) is fenced: it can
    // neither commit transaction 2 early nor abort it
    assert_eq!(end(5, tid, pid, e0, true).0, fenced);
    assert_eq!(end(5, tid, pid, e0, false).0, fenced);
    let open = read(id);
    assert_eq!(markers(&open).len(), 1, "no marker from the late ends");
    assert_eq!(describe(tid).transaction_state.as_str(), "Ongoing");
    assert!(
        open.lso < open.hw,
        "transaction 2 still holds read_committed"
    );
    // transaction 2 ends on its own terms
    assert_eq!(end(5, tid, pid, e0 + 1, true), (0, pid, e0 + 2));
    // and a late end of transaction 1 after that is still fenced
    assert_eq!(end(5, tid, pid, e0, true).0, fenced);
    assert_eq!(end(5, tid, pid, e0, false).0, fenced);
    let done = read(id);
    assert_eq!(
        markers(&done),
        vec![
            (e0 + 1, "COMMIT".to_string()),
            (e0 + 2, "COMMIT".to_string())
        ]
    );
    let values: Vec<String> = done
        .batches
        .iter()
        .filter(|b| !b.0)
        .flat_map(|b| b.2.clone())
        .collect();
    assert_eq!(values, vec!["t1", "t2"]);
}

#[test]
fn tv2_produce_of_the_old_epoch_is_fenced() {
    let topic = "tv2-zombie";
    let id = create(topic, 1);
    let tid = "tv2-zombie-tx";
    let (pid, e0) = init(tid);
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e0, 0, "ok")), 0);
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    let epoch = ResponseError::InvalidProducerEpoch.code();
    // a zombie of the committed transaction: neither the v12 path (which
    // would add the partition) nor the older path (which verifies) takes it
    assert_eq!(
        produce(12, tid, topic, txn_batch(pid, e0, 1, "zombie")),
        epoch
    );
    assert_eq!(
        produce(11, tid, topic, txn_batch(pid, e0, 1, "zombie")),
        epoch
    );
    // and it did not open a transaction for the next epoch either
    assert_eq!(describe(tid).transaction_state.as_str(), "CompleteCommit");
    let p = read(id);
    assert!(p
        .batches
        .iter()
        .all(|b| !b.2.contains(&"zombie".to_string())));
    assert_eq!(p.lso, p.hw);
}

#[test]
fn tv2_retried_end_txn_is_answered_again_without_a_second_marker() {
    let topic = "tv2-retry";
    let id = create(topic, 1);
    let tid = "tv2-retry-tx";
    let (pid, e0) = init(tid);
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e0, 0, "x")), 0);
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    // the response was lost; the client asks again with the epoch it had
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    assert_eq!(
        markers(&read(id)).len(),
        1,
        "one marker, however many retries"
    );
    // the retry of a commit cannot turn into an abort
    assert_eq!(
        end(5, tid, pid, e0, false).0,
        ResponseError::InvalidTxnState.code()
    );
    // a commit with nothing open is not a retry: INVALID_TXN_STATE
    assert_eq!(
        end(5, tid, pid, e0 + 1, true).0,
        ResponseError::InvalidTxnState.code()
    );
    // an abort with nothing open is allowed and bumps (no marker: no
    // partitions); its retry is answered the same
    assert_eq!(end(5, tid, pid, e0 + 1, false), (0, pid, e0 + 2));
    assert_eq!(end(5, tid, pid, e0 + 1, false), (0, pid, e0 + 2));
    assert_eq!(markers(&read(id)).len(), 1);
    // an older epoch is no retry
    assert_eq!(
        end(5, tid, pid, e0, false).0,
        ResponseError::ProducerFenced.code()
    );
}

#[test]
fn tv2_txn_offset_commit_adds_the_offsets_partition() {
    let topic = "tv2-offsets";
    create(topic, 1);
    let tid = "tv2-offsets-tx";
    let group = "tv2-offsets-group";
    let (pid, e0) = init(tid);
    let commit = |version: i16, epoch: i16| -> i16 {
        let req = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(tid)))
            .with_group_id(GroupId(s(group)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(42),
                    ]),
            ]);
        let resp: TxnOffsetCommitResponse = call(ApiKey::TxnOffsetCommit, version, &req);
        resp.topics[0].partitions[0].error_code
    };
    // v4 (transaction version 1) must have had AddOffsetsToTxn first
    assert_eq!(commit(4, e0), ResponseError::TransactionAbortable.code());
    assert_eq!(commit(3, e0), ResponseError::InvalidTxnState.code());
    // v5 adds the group's partition itself
    assert_eq!(commit(5, e0), 0);
    let d = describe(tid);
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.topics[0].topic.0.as_str(), "__consumer_offsets");
    assert_eq!(end(5, tid, pid, e0, true), (0, pid, e0 + 1));
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![0]),
        ]));
    let resp: OffsetFetchResponse = call(ApiKey::OffsetFetch, 7, &req);
    assert_eq!(resp.topics[0].partitions[0].committed_offset, 42);
    // the old epoch is fenced at the next commit
    assert_eq!(
        commit(5, e0),
        ResponseError::InvalidProducerEpoch.code(),
        "a zombie's offsets are refused"
    );
}

#[test]
fn tv1_end_txn_keeps_the_epoch() {
    let topic = "tv1-keep";
    let id = create(topic, 1);
    let tid = "tv1-keep-tx";
    let (pid, e0) = init(tid);
    // a v11 produce outside the transaction: TRANSACTION_ABORTABLE; v10
    // (clients without it): INVALID_TXN_STATE
    assert_eq!(
        produce(11, tid, topic, txn_batch(pid, e0, 0, "early")),
        ResponseError::TransactionAbortable.code()
    );
    assert_eq!(
        produce(10, tid, topic, txn_batch(pid, e0, 0, "early")),
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(add_partition_v3(tid, pid, e0, topic), 0);
    assert_eq!(produce(11, tid, topic, txn_batch(pid, e0, 0, "one")), 0);
    assert_eq!(end(4, tid, pid, e0, true), (0, -1, -1));
    assert_eq!(markers(&read(id)), vec![(e0, "COMMIT".to_string())]);
    assert_eq!(describe(tid).producer_epoch, e0);
    // the retry of a completed end succeeds again
    assert_eq!(end(4, tid, pid, e0, true).0, 0);
    // the same epoch runs the next transaction
    assert_eq!(add_partition_v3(tid, pid, e0, topic), 0);
    assert_eq!(produce(11, tid, topic, txn_batch(pid, e0, 1, "two")), 0);
    assert_eq!(end(4, tid, pid, e0, false).0, 0);
    assert_eq!(
        markers(&read(id)),
        vec![(e0, "COMMIT".to_string()), (e0, "ABORT".to_string())]
    );
    // v0/v1 clients get INVALID_PRODUCER_EPOCH for a fenced epoch
    assert_eq!(
        end(1, tid, pid, e0 - 1, true).0,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        end(4, tid, pid, e0 - 1, true).0,
        ResponseError::ProducerFenced.code()
    );
}

#[test]
fn tv2_exhausted_epoch_rolls_the_producer_id_over() {
    let topic = "tv2-rollover";
    let id = create(topic, 1);
    let tid = "tv2-rollover-tx";
    let txn = &state().txn_coordinator;
    // walk the epoch up to the last one a client may hold (i16::MAX - 1)
    let (mut pid, mut epoch) = init(tid);
    while epoch < i16::MAX - 1 {
        (pid, epoch) = txn
            .init_producer_id(tid, 60_000, pid, epoch)
            .expect("epoch bump");
    }
    let old = pid;
    assert_eq!(produce(12, tid, topic, txn_batch(old, epoch, 0, "last")), 0);
    let (code, new_pid, new_epoch) = end(5, tid, old, epoch, true);
    assert_eq!(code, 0);
    assert_ne!(new_pid, old, "a new producer id");
    assert_eq!(new_epoch, 0);
    // the markers of the last transaction: the old id at the epoch no
    // client is ever given, so nothing of the old id can follow them
    let p = read(id);
    assert_eq!(markers(&p), vec![(i16::MAX, "COMMIT".to_string())]);
    assert_eq!(p.lso, p.hw);
    // the retry names the old id at its last epoch and gets the same answer
    assert_eq!(end(5, tid, old, epoch, true), (0, new_pid, 0));
    // the old id is gone otherwise
    assert_eq!(
        produce(12, tid, topic, txn_batch(old, epoch, 1, "zombie")),
        ResponseError::InvalidProducerIdMapping.code()
    );
    // the new id works
    assert_eq!(produce(12, tid, topic, txn_batch(new_pid, 0, 0, "next")), 0);
    assert_eq!(end(5, tid, new_pid, 0, true), (0, new_pid, 1));
}

#[test]
fn tv2_fenced_transaction_is_not_mistaken_for_a_retry() {
    let topic = "tv2-fence";
    let id = create(topic, 1);
    let tid = "tv2-fence-tx";
    let txn = &state().txn_coordinator;
    init(tid);
    // a 1 ms transaction timeout, so the sweep aborts this one (and none of
    // the other tests' transactions, which have a minute)
    let (pid, e0) = txn
        .init_producer_id(tid, 1, -1, -1)
        .expect("init with a short timeout");
    assert_eq!(
        produce(12, tid, topic, txn_batch(pid, e0, 0, "timed-out")),
        0
    );
    std::thread::sleep(Duration::from_millis(20));
    txn.sweep(oxka_broker::server::now_ms(), false);
    let d = describe(tid);
    assert_eq!(d.transaction_state.as_str(), "CompleteAbort");
    // fenced by two: e0 + 1 stays unused, so the timed-out producer's
    // EndTxn (epoch e0) cannot pass for the retry of this abort and be
    // handed a live epoch
    assert_eq!(d.producer_epoch, e0 + 2);
    let fenced = ResponseError::ProducerFenced.code();
    assert_eq!(end(5, tid, pid, e0, false).0, fenced);
    assert_eq!(end(5, tid, pid, e0, true).0, fenced);
    assert_eq!(
        produce(12, tid, topic, txn_batch(pid, e0, 1, "late")),
        ResponseError::InvalidProducerEpoch.code()
    );
    let p = read(id);
    assert_eq!(markers(&p), vec![(e0 + 2, "ABORT".to_string())]);
    assert_eq!(p.lso, p.hw);
    // a new incarnation carries on
    let (pid2, e2) = init(tid);
    assert_eq!((pid2, e2), (pid, e0 + 3));
    assert_eq!(produce(12, tid, topic, txn_batch(pid, e2, 0, "new")), 0);
    assert_eq!(end(5, tid, pid, e2, true), (0, pid, e2 + 1));
}
