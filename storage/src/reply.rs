//! Answers from a shard writer to its callers: the one-shot a blocking caller sleeps on, and
//! the thread that sends a committed batch's answers so that the writer does not.
//!
//! # The blocking one-shot
//!
//! Why not `crossbeam_channel::bounded(1)` (used here before): its `recv` spins and calls
//! `sched_yield` for a while before it sleeps. With 64 callers waiting on a 2-core machine, the
//! spinning callers took the CPU away from the one writer thread they were all waiting for
//! (perf, 64 writers: the callers' `recv` spinning, `sched_yield` and the resulting context
//! switches were ~30% of all CPU samples). Here a waiting caller sleeps at once
//! (`thread::park`), and the writer wakes exactly that thread (`unpark`).

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::thread::{self, JoinHandle, Thread};

/// Upper bound on committed batches whose answers wait for the reply thread. The writer waits
/// for room when it is reached (the reply thread is far faster than commits, so it never is in
/// practice).
pub(crate) const REPLY_BATCHES_PENDING_MAX: usize = 64;

/// The writer's half: send once, or drop (the caller then learns that no answer will come).
pub(crate) struct BlockingSender<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// The caller's half; must be used by the thread that created the pair.
pub(crate) struct BlockingReceiver<T> {
    slot: Arc<Slot<T>>,
}

/// The sender went away without an answer (the writer stopped).
#[derive(Debug)]
pub(crate) struct NoAnswer;

struct Slot<T> {
    state: Mutex<State<T>>,
    /// The thread that waits in [`BlockingReceiver::recv`].
    waiter: Thread,
}

enum State<T> {
    Waiting,
    Sent(T),
    Dropped,
}

/// A pair whose receiver is the current thread.
pub(crate) fn blocking_reply<T>() -> (BlockingSender<T>, BlockingReceiver<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Waiting),
        waiter: thread::current(),
    });
    (
        BlockingSender {
            slot: Some(Arc::clone(&slot)),
        },
        BlockingReceiver { slot },
    )
}

impl<T> BlockingSender<T> {
    pub(crate) fn send(mut self, value: T) {
        self.finish(State::Sent(value));
    }

    fn finish(&mut self, state: State<T>) {
        if let Some(slot) = self.slot.take() {
            *slot.state.lock() = state;
            slot.waiter.unpark();
        }
    }
}

impl<T> Drop for BlockingSender<T> {
    fn drop(&mut self) {
        self.finish(State::Dropped);
    }
}

impl<T> BlockingReceiver<T> {
    /// Sleeps until the answer is sent or the sender is dropped.
    pub(crate) fn recv(self) -> Result<T, NoAnswer> {
        loop {
            {
                let mut state = self.slot.state.lock();
                match std::mem::replace(&mut *state, State::Waiting) {
                    State::Sent(value) => return Ok(value),
                    State::Dropped => return Err(NoAnswer),
                    State::Waiting => {}
                }
            }
            // Returns at once if `unpark` came first; may also return spuriously, hence the loop.
            thread::park();
        }
    }
}

/// An answer that can be delivered to its caller.
pub(crate) trait Deliver: Send + 'static {
    fn deliver(self);
}

/// The thread that sends the answers of committed batches, in commit order.
///
/// Waking a sleeping caller is a `futex` wake that costs the waker several microseconds (on the
/// 2-core VM: ~5 us, a quarter of the writer's CPU time at 64 writers). Done on the writer, that
/// time sat between one batch's commit and the next batch's start; here it overlaps the next
/// batch. The answers are still sent only after their batch committed.
pub(crate) struct Replier<T: Deliver> {
    shared: Arc<ReplyQueue<T>>,
    thread: Option<JoinHandle<()>>,
}

struct ReplyQueue<T> {
    state: Mutex<QueueState<T>>,
    /// Signalled when a batch is queued or the queue is closed.
    filled: Condvar,
    /// Signalled when the reply thread takes the queued batches.
    drained: Condvar,
}

struct QueueState<T> {
    batches: VecDeque<Vec<T>>,
    closed: bool,
}

impl<T: Deliver> Replier<T> {
    /// Starts the reply thread.
    pub(crate) fn start(name: String) -> io::Result<Replier<T>> {
        let shared = Arc::new(ReplyQueue {
            state: Mutex::new(QueueState {
                batches: VecDeque::new(),
                closed: false,
            }),
            filled: Condvar::new(),
            drained: Condvar::new(),
        });
        let queue = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(name)
            .spawn(move || queue.run())?;
        Ok(Replier {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues a committed batch's answers.
    pub(crate) fn push(&self, batch: Vec<T>) {
        if batch.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock();
        while state.batches.len() >= REPLY_BATCHES_PENDING_MAX {
            self.shared.drained.wait(&mut state);
        }
        state.batches.push_back(batch);
        drop(state);
        self.shared.filled.notify_one();
    }
}

impl<T: Deliver> Drop for Replier<T> {
    /// Sends every queued answer, then stops the thread.
    fn drop(&mut self) {
        self.shared.state.lock().closed = true;
        self.shared.filled.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("a shard's reply thread panicked");
        }
    }
}

impl<T: Deliver> ReplyQueue<T> {
    fn run(&self) {
        let mut state = self.state.lock();
        loop {
            if state.batches.is_empty() {
                if state.closed {
                    return;
                }
                self.filled.wait(&mut state);
                continue;
            }
            let batches = std::mem::take(&mut state.batches);
            drop(state);
            self.drained.notify_one();
            for answer in batches.into_iter().flatten() {
                answer.deliver();
            }
            state = self.state.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_arrives_from_another_thread() {
        let (tx, rx) = blocking_reply();
        let sender = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            tx.send(42u64);
        });
        assert_eq!(rx.recv().unwrap(), 42);
        sender.join().unwrap();
    }

    #[test]
    fn an_answer_sent_before_the_wait_is_kept() {
        let (tx, rx) = blocking_reply();
        tx.send("done");
        assert_eq!(rx.recv().unwrap(), "done");
    }

    #[test]
    fn a_dropped_sender_ends_the_wait() {
        let (tx, rx) = blocking_reply::<u64>();
        let sender = thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(20));
            drop(tx);
        });
        assert!(rx.recv().is_err());
        sender.join().unwrap();
    }

    struct Answer(BlockingSender<u64>, u64);
    impl Deliver for Answer {
        fn deliver(self) {
            self.0.send(self.1);
        }
    }

    #[test]
    fn the_reply_thread_delivers_every_queued_answer_before_it_stops() {
        let replier = Replier::start("reply-test".into()).unwrap();
        let mut receivers = Vec::new();
        for batch in 0..200u64 {
            let mut answers = Vec::new();
            for i in 0..3 {
                let (tx, rx) = blocking_reply();
                answers.push(Answer(tx, batch * 10 + i));
                receivers.push((rx, batch * 10 + i));
            }
            replier.push(answers);
        }
        drop(replier);
        for (rx, expected) in receivers {
            assert_eq!(rx.recv().unwrap(), expected);
        }
    }
}
