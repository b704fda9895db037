//! The consumer's librdkafka context: statistics, the offset tracker, the commit gate, and
//! the rebalance callback (start offsets of new partitions, a last commit for revoked ones).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};

use super::commit_gate::CommitGate;
use super::context::{observe_error, observe_log, ClientHealth};
use super::offsets::OffsetTracker;
use super::rebalancer::Rebalancer;
use super::settings::{ConsumerSettings, OffsetReset};
use crate::runtime::wake::Wake;

/// librdkafka's default `retry.backoff.ms`: the pause before asking the broker again.
const LIBRDKAFKA_RETRY_BACKOFF_MS: u64 = 100;

#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub received: AtomicU64,
    pub processed: AtomicU64,
    /// Commits this consumer asked for (answered ones are `commits`).
    pub commit_requests: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    pub consume_errors: AtomicU64,
    pub rebalances: AtomicU64,
}

/// Where an assigned partition starts, as the assignment fixed it: what the consumer's
/// position is until it hands out the partition's first record (see `KafkaConsumer::lag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// This offset: the committed one, or the end offset the `latest` policy resolved.
    At(i64),
    /// The partition's first record (the `earliest` policy, nothing committed).
    Beginning,
}

/// The start of every partition assigned with a known one, by topic and partition.
#[derive(Debug, Default)]
pub(super) struct Starts(Mutex<HashMap<String, HashMap<i32, Start>>>);

impl Starts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<i32, Start>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers where `partition` starts; an offset librdkafka resolves later (the end, or
    /// a committed offset whose lookup failed) is not known here.
    pub(super) fn assigned(&self, topic: &str, partition: i32, offset: Offset) {
        let start = match offset {
            Offset::Offset(o) if o >= 0 => Some(Start::At(o)),
            Offset::Beginning => Some(Start::Beginning),
            _ => None,
        };
        let mut starts = self.lock();
        match start {
            Some(start) => {
                starts
                    .entry(topic.to_owned())
                    .or_default()
                    .insert(partition, start);
            }
            None => forget(&mut starts, topic, partition),
        }
    }

    pub(super) fn revoked(&self, topic: &str, partition: i32) {
        forget(&mut self.lock(), topic, partition);
    }

    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    pub(super) fn of(&self, topic: &str, partition: i32) -> Option<Start> {
        self.lock().get(topic)?.get(&partition).copied()
    }
}

fn forget(starts: &mut HashMap<String, HashMap<i32, Start>>, topic: &str, partition: i32) {
    if let Some(parts) = starts.get_mut(topic) {
        parts.remove(&partition);
        if parts.is_empty() {
            starts.remove(topic);
        }
    }
}

pub struct ConsumerCtx {
    pub health: ClientHealth,
    pub stats: ConsumerStats,
    /// Set by the first assignment (possibly of no partitions): the consumer is live.
    pub(super) assigned: AtomicBool,
    commit_enabled: bool,
    reset: OffsetReset,
    tracker: Mutex<OffsetTracker>,
    pub(super) commit_gate: CommitGate,
    /// Where the assigned partitions started (for `lag`).
    pub(super) starts: Starts,
    wake: Arc<Wake>,
    /// Rebalances met by `drain` are applied on a thread of their own (decision 127).
    pub(super) rebalancer: Rebalancer,
    /// How long fixing the start offsets of one assignment may take: the session timeout
    /// (a member that cannot reach its coordinator for that long is out of the group anyway).
    lookup_timeout: Duration,
    /// The pause before asking again for an end offset: the client's `retry.backoff.ms`.
    retry_pause: Duration,
}

impl ConsumerCtx {
    /// `config` is the client's effective configuration (`settings` with `extra` applied).
    pub(super) fn new(settings: &ConsumerSettings, config: &ClientConfig, wake: Arc<Wake>) -> Self {
        let millis = |key: &str, default: u64| {
            Duration::from_millis(
                config
                    .get(key)
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(default),
            )
        };
        ConsumerCtx {
            health: ClientHealth::default(),
            stats: ConsumerStats::default(),
            assigned: AtomicBool::new(false),
            commit_enabled: settings.commit.enabled,
            reset: settings.auto_offset_reset,
            tracker: Mutex::new(OffsetTracker::default()),
            commit_gate: CommitGate::new(Duration::from_millis(u64::from(
                settings.commit.interval_ms.max(1_000),
            ))),
            starts: Starts::default(),
            rebalancer: Rebalancer::new(wake.clone()),
            wake,
            lookup_timeout: millis("session.timeout.ms", u64::from(settings.session_timeout_ms))
                .max(Duration::from_millis(1)),
            retry_pause: millis("retry.backoff.ms", LIBRDKAFKA_RETRY_BACKOFF_MS),
        }
    }

    pub(super) fn tracker(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        // The tracker holds plain data; a panic elsewhere cannot leave it half-updated in a
        // way that matters more than stopping the consumer would.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Explicit start offsets for newly assigned partitions: the committed offset, else the
    /// reset policy resolved now. Resolving "latest" here (rather than at the first fetch)
    /// fixes the starting point before the subscriber reports itself live, so a record
    /// produced after that is never skipped.
    fn start_positions(
        &self,
        consumer: &BaseConsumer<Self>,
        assigned: &TopicPartitionList,
    ) -> TopicPartitionList {
        let deadline = Instant::now() + self.lookup_timeout;
        // Half the budget at most for the committed offsets, so that the end offsets
        // `latest` asks for next always have the other half.
        let committed = if self.commit_enabled {
            match consumer.committed_offsets(assigned.clone(), self.lookup_timeout / 2) {
                Ok(tpl) => Some(tpl),
                Err(e) => {
                    log::warn!(target: "tradecore_eventbus.kafka", "committed offset lookup failed, librdkafka will resolve it: {e}");
                    None
                }
            }
        } else {
            None
        };
        let mut out = TopicPartitionList::with_capacity(assigned.count());
        for elem in assigned.elements() {
            let (topic, partition) = (elem.topic(), elem.partition());
            let start =
                match committed_start(self.commit_enabled, committed.as_ref(), topic, partition) {
                    CommittedStart::At(o) => Offset::Offset(o),
                    CommittedStart::Unknown => Offset::Invalid,
                    CommittedStart::Reset => match self.reset {
                        OffsetReset::Earliest => Offset::Beginning,
                        OffsetReset::Latest => {
                            latest_offset(consumer, topic, partition, deadline, self.retry_pause)
                        }
                    },
                };
            if out.add_partition_offset(topic, partition, start).is_err() {
                out.add_partition(topic, partition);
            }
        }
        out
    }
}

fn is_cooperative(consumer: &BaseConsumer<ConsumerCtx>) -> bool {
    matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    )
}

/// The assign (`assign`) or unassign call librdkafka waits for after a rebalance event, in
/// the group's protocol: incremental for cooperative, the whole assignment for eager.
fn switch_assignment(
    consumer: &BaseConsumer<ConsumerCtx>,
    assign: bool,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    match (assign, is_cooperative(consumer)) {
        (true, true) => consumer.incremental_assign(tpl),
        (true, false) => consumer.assign(tpl),
        (false, true) => consumer.incremental_unassign(tpl),
        (false, false) => consumer.unassign(),
    }
}

/// What the committed-offset lookup says of one newly assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommittedStart {
    /// The committed offset: start there.
    At(i64),
    /// Nothing committed (or commits are off): the reset policy applies.
    Reset,
    /// The lookup failed, as a whole or for this partition: librdkafka looks the committed
    /// offset up itself when it starts fetching.
    Unknown,
}

/// `committed` is the lookup's answer, None when it failed as a whole (or commits are off).
fn committed_start(
    commit_enabled: bool,
    committed: Option<&TopicPartitionList>,
    topic: &str,
    partition: i32,
) -> CommittedStart {
    if !commit_enabled {
        return CommittedStart::Reset;
    }
    let Some(committed) = committed else {
        return CommittedStart::Unknown;
    };
    let Some(found) = committed.find_partition(topic, partition) else {
        return CommittedStart::Reset;
    };
    // A partition's own error comes with offset -1001, which reads like "nothing
    // committed": resolving the reset policy then could skip what was not consumed.
    if let Err(e) = found.error() {
        log::warn!(target: "tradecore_eventbus.kafka", "committed offset lookup of {topic} [{partition}] failed, librdkafka will resolve it: {e}");
        return CommittedStart::Unknown;
    }
    match found.offset() {
        Offset::Offset(o) if o >= 0 => CommittedStart::At(o),
        _ => CommittedStart::Reset,
    }
}

/// The partition's end offset now. Retried until the assignment's lookup deadline: right
/// after a topic is created its partitions may have no leader for a moment, and falling back
/// to "end at the first fetch" then would skip what is produced in between.
fn latest_offset(
    consumer: &BaseConsumer<ConsumerCtx>,
    topic: &str,
    partition: i32,
    deadline: Instant,
    retry_pause: Duration,
) -> Offset {
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            log::warn!(target: "tradecore_eventbus.kafka", "end offset of {topic}[{partition}] not known within the lookup's time; librdkafka will resolve it at the first fetch");
            return Offset::End;
        }
        match consumer.fetch_watermarks(topic, partition, remaining) {
            Ok((_, high)) => return Offset::Offset(high),
            Err(e) if Instant::now() + retry_pause < deadline => {
                log::debug!(target: "tradecore_eventbus.kafka", "end offset of {topic}[{partition}] not known yet: {e}");
                std::thread::sleep(retry_pause);
            }
            Err(e) => {
                log::warn!(target: "tradecore_eventbus.kafka", "end offset of {topic}[{partition}] unknown ({e}); librdkafka will resolve it at the first fetch");
                return Offset::End;
            }
        }
    }
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "FATAL" {
            // A fatal consumer error also reaches `poll` as an error, where it becomes a typed
            // exception that its subscriber logs once; librdkafka's own line would be a second.
            self.health.record(log_message.to_string());
            log::debug!(target: "librdkafka", "{fac}: {log_message}");
            return;
        }
        observe_log(&self.health, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if observe_error(&self.health, "consumer", &error, reason) {
            // Waiters (wait_assigned, a Python wait()) look again and find the gate set.
            self.wake.wake();
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if self.rebalancer.hand_over(err, tpl) {
            return;
        }
        self.rebalancer.wait_idle();
        self.apply_rebalance(consumer, err, tpl);
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        // Any answer (ours, librdkafka's interval commit, the one on revoke) frees the slot:
        // the next mark commits everything stored since.
        self.commit_gate.release();
        match result {
            Ok(()) => {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                log::warn!(target: "tradecore_eventbus.kafka", "offset commit failed: {e}");
            }
        }
    }
}

impl ConsumerCtx {
    /// Only the assign or unassign call librdkafka waits for, with the partitions as given
    /// (librdkafka then looks the start offsets up itself).
    pub(super) fn apply_plainly(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &TopicPartitionList,
    ) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if let Err(e) = switch_assignment(consumer, assign, tpl) {
            log::error!(target: "tradecore_eventbus.kafka", "plain (un)assign failed: {e}");
        }
        if assign {
            self.assigned.store(true, Ordering::Release);
        }
        self.wake.wake();
    }

    /// Fixes the start offsets of assigned partitions, or commits and gives up revoked ones.
    pub(super) fn apply_rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let start = self.start_positions(consumer, tpl);
                // Tracked before librdkafka may fetch them: a record of an untracked
                // partition could not be committed correctly.
                {
                    let mut tracker = self.tracker();
                    for elem in start.elements() {
                        tracker.assign(elem.topic(), elem.partition());
                        self.starts
                            .assigned(elem.topic(), elem.partition(), elem.offset());
                    }
                }
                if let Err(e) = switch_assignment(consumer, true, &start) {
                    log::error!(target: "tradecore_eventbus.kafka", "assigning partitions failed: {e}");
                }
                // Joined the group: the credentials work.
                self.health.auth.clear();
                self.stats.rebalances.fetch_add(1, Ordering::Release);
                self.assigned.store(true, Ordering::Release);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Commit what was processed on the partitions we lose, before the new owner
                // reads the committed offsets.
                let lost = consumer.assignment_lost();
                let mut commit = TopicPartitionList::new();
                {
                    let mut tracker = self.tracker();
                    for elem in tpl.elements() {
                        self.starts.revoked(elem.topic(), elem.partition());
                        if let Some(next) = tracker.revoke(elem.topic(), elem.partition()) {
                            let _ = commit.add_partition_offset(
                                elem.topic(),
                                elem.partition(),
                                Offset::Offset(next),
                            );
                        }
                    }
                }
                if self.commit_enabled && !lost && commit.count() > 0 {
                    match consumer.commit(&commit, CommitMode::Sync) {
                        Ok(()) => {
                            self.stats.commits.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            self.stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                            log::warn!(target: "tradecore_eventbus.kafka", "commit on revoke failed: {e}");
                        }
                    }
                }
                if let Err(e) = switch_assignment(consumer, false, tpl) {
                    log::error!(target: "tradecore_eventbus.kafka", "unassigning partitions failed: {e}");
                }
                self.stats.rebalances.fetch_add(1, Ordering::Release);
            }
            other => {
                let code: RDKafkaErrorCode = other.into();
                log::error!(target: "tradecore_eventbus.kafka", "rebalance error: {code}");
                self.tracker().take_dirty();
                if !is_cooperative(consumer) {
                    let _ = consumer.unassign();
                    self.starts.clear();
                }
            }
        }
        self.wake.wake();
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaRespErr;
    use rdkafka::{Offset, TopicPartitionList};

    use super::{committed_start, CommittedStart};

    /// A lookup answer: partition 0 committed at 7, partition 1 with nothing committed,
    /// partition 2 failed on its own (librdkafka keeps OffsetFetch errors per partition).
    fn answer() -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("t", 0, Offset::Offset(7)).unwrap();
        tpl.add_partition_offset("t", 1, Offset::Invalid).unwrap();
        tpl.add_partition_offset("t", 2, Offset::Invalid).unwrap();
        // SAFETY: the list has three elements; only the third's error code is written. The
        // mock cluster cannot fail one partition of a lookup alone, hence the direct write.
        unsafe {
            (*(*tpl.ptr()).elems.add(2)).err =
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
        }
        tpl
    }

    #[test]
    fn a_partition_whose_own_lookup_failed_is_left_to_librdkafka_not_reset() {
        let tpl = answer();
        assert!(tpl.find_partition("t", 2).unwrap().error().is_err());
        assert_eq!(
            committed_start(true, Some(&tpl), "t", 2),
            CommittedStart::Unknown
        );
        assert_eq!(
            committed_start(true, Some(&tpl), "t", 0),
            CommittedStart::At(7)
        );
        assert_eq!(
            committed_start(true, Some(&tpl), "t", 1),
            CommittedStart::Reset
        );
        // Not in the answer at all: nothing committed.
        assert_eq!(
            committed_start(true, Some(&tpl), "t", 3),
            CommittedStart::Reset
        );
    }

    #[test]
    fn a_failed_lookup_leaves_every_partition_to_librdkafka_and_no_commits_means_reset() {
        assert_eq!(committed_start(true, None, "t", 0), CommittedStart::Unknown);
        assert_eq!(committed_start(false, None, "t", 0), CommittedStart::Reset);
    }
}
