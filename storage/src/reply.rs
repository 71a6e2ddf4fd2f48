//! A one-shot answer from a shard writer to a thread that blocks until it arrives.
//!
//! Why not `crossbeam_channel::bounded(1)` (used here before): its `recv` spins and calls
//! `sched_yield` for a while before it sleeps. With 64 callers waiting on a 2-core machine, the
//! spinning callers took the CPU away from the one writer thread they were all waiting for
//! (perf, 64 writers: the callers' `recv` spinning, `sched_yield` and the resulting context
//! switches were ~30% of all CPU samples). Here a waiting caller sleeps at once
//! (`thread::park`), and the writer wakes exactly that thread (`unpark`).

use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::{self, Thread};

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
}
