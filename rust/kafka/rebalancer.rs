//! Rebalances applied off the thread that drains records.
//!
//! librdkafka runs the rebalance callback inside whichever poll meets the rebalance event,
//! and `drain` polls on the caller's thread: for the Python package, the asyncio event
//! loop's. The callback asks the broker where new partitions start and commits what was
//! processed on revoked ones; on a bad day (a coordinator moving, a leader lost) those
//! answers take seconds, and the whole event loop (publishers, other subscriptions, health
//! checks) would stand still meanwhile. So a rebalance met by `drain` is handed to a
//! thread of its own, and `drain` hands out nothing new until that thread has applied it:
//! records keep librdkafka's order around the rebalance, and no record of a revoked
//! partition is handed out after its last commit. librdkafka waits for the assign or
//! unassign call, which may come from any thread (decision 127).
//!
//! Polls elsewhere (`wait_assigned`, the close) may block their own thread; they apply a
//! rebalance inline, after any handed-over one, so rebalances are always applied in order.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

thread_local! {
    /// Set while `drain` polls: a rebalance met there is handed over.
    static HAND_OVER_HERE: Cell<bool> = const { Cell::new(false) };
    /// Set on the rebalance thread: it never waits for itself.
    static ON_REBALANCE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Applies one rebalance to the consumer; false when the consumer is gone (closing).
pub type Apply = Arc<dyn Fn(RDKafkaRespErr, &mut TopicPartitionList) -> bool + Send + Sync>;

/// Hands rebalances met on this thread over until dropped (see the module docs).
pub struct HandOverHere {
    before: bool,
}

impl HandOverHere {
    /// Starts handing over on this thread; the previous state returns with the drop.
    pub fn begin() -> Self {
        HandOverHere {
            before: HAND_OVER_HERE.with(|h| h.replace(true)),
        }
    }
}

impl Drop for HandOverHere {
    fn drop(&mut self) {
        HAND_OVER_HERE.with(|h| h.set(self.before));
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<(RDKafkaRespErr, TopicPartitionList)>,
    running: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    idle: Condvar,
    /// Handed-over rebalances not yet applied: `drain` polls nothing meanwhile.
    busy: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Rebalancer {
    shared: Arc<Shared>,
    apply: OnceLock<Apply>,
    /// Called when the last handed-over rebalance is applied: waiters look again.
    done: OnceLock<Arc<dyn Fn() + Send + Sync>>,
}

impl Default for Rebalancer {
    fn default() -> Self {
        Rebalancer {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                idle: Condvar::new(),
                busy: AtomicBool::new(false),
            }),
            apply: OnceLock::new(),
            done: OnceLock::new(),
        }
    }
}

impl Rebalancer {
    /// Enables handing over: until this is called every rebalance is applied inline.
    pub fn attach(&self, apply: Apply, done: Arc<dyn Fn() + Send + Sync>) {
        let _ = self.apply.set(apply);
        let _ = self.done.set(done);
    }

    /// Whether a handed-over rebalance is still to be applied.
    pub fn busy(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire)
    }

    /// Called by the rebalance callback: true when the rebalance was handed over (the
    /// callback returns at once), false when the caller applies it now.
    pub fn hand_over(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList) -> bool {
        if !HAND_OVER_HERE.with(Cell::get) {
            return false;
        }
        let (Some(apply), Some(done)) = (self.apply.get(), self.done.get()) else {
            return false;
        };
        let mut queue = self.shared.queue();
        queue.jobs.push_back((err, tpl.clone()));
        self.shared.busy.store(true, Ordering::Release);
        if queue.running {
            return true;
        }
        let shared = Arc::clone(&self.shared);
        let (apply, done) = (Arc::clone(apply), Arc::clone(done));
        let spawned = std::thread::Builder::new()
            .name("eventbus-rebalance".into())
            .spawn(move || run(&shared, &*apply, &*done));
        match spawned {
            Ok(_) => {
                queue.running = true;
                true
            }
            Err(e) => {
                // No thread to be had: apply it here, as before handing over existed.
                log::warn!(target: "tradecore_eventbus.kafka", "no thread for the rebalance ({e}); applying it on the polling thread");
                queue.jobs.pop_back();
                self.shared
                    .busy
                    .store(!queue.jobs.is_empty(), Ordering::Release);
                false
            }
        }
    }

    /// Waits until every handed-over rebalance is applied, so that one applied inline comes
    /// after them. Never waits on the rebalance thread itself (a consumer dropped there
    /// closes there).
    pub fn wait_idle(&self) {
        if ON_REBALANCE_THREAD.with(Cell::get) {
            return;
        }
        let mut queue = self.shared.queue();
        while queue.running || !queue.jobs.is_empty() {
            queue = self
                .shared
                .idle
                .wait(queue)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn run(
    shared: &Shared,
    apply: &(dyn Fn(RDKafkaRespErr, &mut TopicPartitionList) -> bool + Send + Sync),
    done: &(dyn Fn() + Send + Sync),
) {
    ON_REBALANCE_THREAD.with(|t| t.set(true));
    loop {
        let next = {
            let mut queue = shared.queue();
            match queue.jobs.pop_front() {
                Some(job) => job,
                None => {
                    queue.running = false;
                    shared.busy.store(false, Ordering::Release);
                    shared.idle.notify_all();
                    break;
                }
            }
        };
        let (err, mut tpl) = next;
        if !apply(err, &mut tpl) {
            // The consumer is closing: librdkafka revokes its partitions as it closes, and
            // what was not committed is delivered again to their next owner.
            log::debug!(target: "tradecore_eventbus.kafka", "consumer closed before its rebalance was applied");
        }
    }
    done();
}
