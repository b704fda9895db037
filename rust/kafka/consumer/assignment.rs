//! The consumer's partitions: pausing and resuming them, listing them, and reading a topic
//! from a point in time without a group.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaConsumer;
use crate::kafka::consumer_context::ConsumerCtx;
use crate::kafka::error::{Error, Result};

impl KafkaConsumer {
    fn partition_list(&self, partitions: Option<&[(String, i32)]>) -> Result<TopicPartitionList> {
        let handle = self.handle()?;
        match partitions {
            Some(list) => {
                let mut tpl = TopicPartitionList::with_capacity(list.len());
                for (topic, partition) in list {
                    tpl.add_partition(topic, *partition);
                }
                Ok(tpl)
            }
            None => handle
                .consumer
                .assignment()
                .map_err(|e| Error::from_kafka("assignment", e)),
        }
    }

    /// Reads a topic without a group: assigns every partition at the first offset whose
    /// timestamp is at or after `since_ms` and returns, per partition, that start offset and
    /// the end offset at the time of the call (what is to be read). Blocking.
    pub fn assign_from_time(
        &self,
        topic: &str,
        since_ms: i64,
        timeout: Duration,
    ) -> Result<Vec<(i32, i64, i64)>> {
        let handle = self.handle()?;
        let consumer = &handle.consumer;
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .map_err(|e| Error::from_kafka("metadata", e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(
                Error::kafka("read topic", RDKafkaErrorCode::UnknownTopicOrPartition)
                    .with_detail(format!("topic {topic:?}")),
            );
        }
        // The end offsets first, then the time lookup: a broker answers "no record at or after
        // the time" for a record at or past its high watermark (decision 126), so the answer
        // is asked for once the broker has shown a high watermark at least as high as what
        // is read.
        let mut ends = Vec::with_capacity(partitions.len());
        for &p in &partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .map_err(|e| Error::from_kafka("watermarks", e))?;
            ends.push((p, high));
        }
        let starts = offsets_at(consumer, topic, &partitions, since_ms, timeout)?;
        let mut plan = Vec::with_capacity(partitions.len());
        let mut assign = TopicPartitionList::with_capacity(partitions.len());
        for (p, high) in ends {
            let answered = starts.get(&p).copied().flatten();
            // A partition left out of librdkafka's answer keeps the query's value, the time
            // itself: not an offset (no offset can be that far past the end).
            if answered == Some(since_ms) && since_ms > high {
                return Err(Error::kafka(
                    "offsets for times",
                    RDKafkaErrorCode::LeaderNotAvailable,
                )
                .with_detail(format!("topic {topic:?} partition {p}: not answered")));
            }
            // No record at or after the time: nothing to read in this partition. An offset
            // past the end offset read before means the same.
            let start = answered.unwrap_or(high).min(high);
            let _ = assign.add_partition_offset(topic, p, Offset::Offset(start));
            plan.push((p, start, high));
        }
        consumer
            .assign(&assign)
            .map_err(|e| Error::from_kafka("assign", e))?;
        // `assign` replaces the whole assignment.
        self.ctx.starts.clear();
        for (p, start, _) in &plan {
            self.ctx.starts.assigned(topic, *p, Offset::Offset(*start));
        }
        Ok(plan)
    }

    /// Stops fetching from the given partitions (all assigned ones by default).
    pub fn pause(&self, partitions: Option<&[(String, i32)]>) -> Result<()> {
        let tpl = self.partition_list(partitions)?;
        self.handle()?
            .consumer
            .pause(&tpl)
            .map_err(|e| Error::from_kafka("pause", e))
    }

    pub fn resume(&self, partitions: Option<&[(String, i32)]>) -> Result<()> {
        let tpl = self.partition_list(partitions)?;
        self.handle()?
            .consumer
            .resume(&tpl)
            .map_err(|e| Error::from_kafka("resume", e))
    }

    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        let tpl = self.partition_list(None)?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect())
    }
}

/// The first offset at or after `since_ms` of each partition (`None`: no such record), or the
/// error of any partition. The call itself succeeds while single partitions carry an error
/// with offset -1, which would read as "no such record": librdkafka 2.12.1 keeps the answer
/// of a ListOffsets attempt that it retried (UNKNOWN_LEADER_EPOCH right after the leader came
/// back) and reports that first answer (decision 126).
fn offsets_at(
    consumer: &BaseConsumer<ConsumerCtx>,
    topic: &str,
    partitions: &[i32],
    since_ms: i64,
    timeout: Duration,
) -> Result<HashMap<i32, Option<i64>>> {
    let mut query = TopicPartitionList::with_capacity(partitions.len());
    for p in partitions {
        let _ = query.add_partition_offset(topic, *p, Offset::Offset(since_ms));
    }
    let answer = consumer
        .offsets_for_times(query, timeout)
        .map_err(|e| Error::from_kafka("offsets for times", e))?;
    let mut out = HashMap::with_capacity(partitions.len());
    for &p in partitions {
        let found = answer.find_partition(topic, p);
        if let Some(Err(e)) = found.as_ref().map(|elem| elem.error()) {
            return Err(Error::from_kafka("offsets for times", e)
                .with_detail(format!("topic {topic:?} partition {p}")));
        }
        let offset = match found.map(|e| e.offset()) {
            Some(Offset::Offset(o)) if o >= 0 => Some(o),
            _ => None,
        };
        out.insert(p, offset);
    }
    Ok(out)
}
