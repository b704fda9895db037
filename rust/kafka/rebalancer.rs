//! Rebalances applied off the thread that drains records.
//!
//! librdkafka runs the rebalance callback inside whichever poll meets the rebalance event,
//! and `drain` polls on the caller's thread: for the Python package, the asyncio event
//! loop's. The callback asks the broker where new partitions start and commits what was
//! processed on revoked ones; on a bad day (a coordinator moving, a leader lost) those
//! answers take seconds, and the whole event loop (publishers, other subscriptions, health
//! checks) would stand still meanwhile. So a rebalance met by `drain` is handed to a
//! thread of its own, and `drain` hands out nothing new until that thread has applied it:
//! records keep librdkafka's order around the rebalance, and no record of a new partition
//! is handed out before its start is fixed. librdkafka waits for the assign or unassign
//! call, which may come from any thread (decision 127).
//!
//! A handed-over rebalance holds the consumer's handle, so it is always applied: a
//! consumer that librdkafka left waiting for an assign call could never close. Polls
//! elsewhere (`wait_assigned`, the close) apply a rebalance inline, after any handed-over
//! one, so rebalances are always applied in order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rdkafka::types::RDKafkaRespErr;
use rdkafka::TopicPartitionList;

use crate::runtime::wake::Wake;

/// What applies a rebalance to a consumer (its handle).
pub trait Applies: Send + Sync + 'static {
    /// Fixes start offsets and assigns, or commits and unassigns.
    fn apply(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList);
    /// Only the assign or unassign call librdkafka waits for: used when `apply` panicked,
    /// so that the consumer is never left waiting for it.
    fn apply_plainly(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList);
}

thread_local! {
    /// Set while `drain` polls: the rebalancer (by identity) that takes over a rebalance
    /// met here, and the handle that will apply it.
    static HAND_OVER_HERE: RefCell<Option<(usize, Arc<dyn Applies>)>> =
        const { RefCell::new(None) };
    /// Set on a rebalance thread: it never waits for itself.
    static ON_REBALANCE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Hands rebalances of `rebalancer`'s consumer met on this thread over until dropped.
pub struct HandOverHere {
    before: Option<(usize, Arc<dyn Applies>)>,
}

impl HandOverHere {
    pub fn begin(rebalancer: &Rebalancer, handle: Arc<dyn Applies>) -> Self {
        HandOverHere {
            before: HAND_OVER_HERE.with(|h| h.replace(Some((rebalancer.id(), handle)))),
        }
    }
}

impl Drop for HandOverHere {
    fn drop(&mut self) {
        let before = self.before.take();
        HAND_OVER_HERE.with(|h| *h.borrow_mut() = before);
    }
}

struct Job {
    err: RDKafkaRespErr,
    tpl: TopicPartitionList,
    handle: Arc<dyn Applies>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    running: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    idle: Condvar,
    /// Handed-over rebalances not yet applied: `drain` polls nothing meanwhile.
    busy: AtomicBool,
    /// Woken when the last handed-over rebalance is applied: waiters look again.
    wake: Arc<Wake>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Rebalancer {
    shared: Arc<Shared>,
}

impl Rebalancer {
    pub fn new(wake: Arc<Wake>) -> Self {
        Rebalancer {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                idle: Condvar::new(),
                busy: AtomicBool::new(false),
                wake,
            }),
        }
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// Whether a handed-over rebalance is still to be applied.
    pub fn busy(&self) -> bool {
        self.shared.busy.load(Ordering::Acquire)
    }

    /// Called by the rebalance callback: true when the rebalance was handed over (the
    /// callback returns at once), false when the caller applies it now.
    pub fn hand_over(&self, err: RDKafkaRespErr, tpl: &TopicPartitionList) -> bool {
        let handle = HAND_OVER_HERE.with(|h| match &*h.borrow() {
            Some((id, handle)) if *id == self.id() => Some(Arc::clone(handle)),
            _ => None,
        });
        let Some(handle) = handle else {
            return false;
        };
        let mut queue = self.shared.queue();
        queue.jobs.push_back(Job {
            err,
            tpl: tpl.clone(),
            handle,
        });
        self.shared.busy.store(true, Ordering::Release);
        if queue.running {
            return true;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("eventbus-rebalance".into())
            .spawn(move || run(&shared));
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

    /// Waits until every handed-over rebalance is applied. Never waits on the rebalance
    /// thread itself (a consumer whose last handle is dropped there closes there).
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

fn run(shared: &Shared) {
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
        let Job { err, tpl, handle } = next;
        // A panic must not end this thread with the queue marked running: `drain` would
        // hand out nothing ever again and librdkafka would wait for the assign call.
        if catch_unwind(AssertUnwindSafe(|| handle.apply(err, &tpl))).is_err() {
            log::error!(target: "tradecore_eventbus.kafka", "applying a rebalance panicked; assigning or unassigning its partitions as they are");
            if catch_unwind(AssertUnwindSafe(|| handle.apply_plainly(err, &tpl))).is_err() {
                log::error!(target: "tradecore_eventbus.kafka", "assigning or unassigning after a panic panicked too");
            }
        }
        // Possibly the consumer's last handle: it then closes here (its own rebalances are
        // applied inline on this thread, which never waits for itself).
        drop(handle);
    }
    shared.wake.wake();
}
