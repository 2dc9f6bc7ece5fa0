//! A tiny runtime-agnostic change notification: a version counter plus parked wakers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct Notify {
    version: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Notify {
    pub(crate) fn notify(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for waker in wakers {
            waker.wake();
        }
    }

    pub(crate) fn changed(&self) -> Changed<'_> {
        Changed {
            notify: self,
            seen: self.version.load(Ordering::SeqCst),
        }
    }

    /// Resolves once `cond` holds, checking it again after every change. The notification is
    /// taken *before* each check, so a change between the check and the wait is never missed.
    pub(crate) async fn until(&self, mut cond: impl FnMut() -> bool) {
        loop {
            let changed = self.changed();
            if cond() {
                return;
            }
            changed.await;
        }
    }
}

/// Future returned by [`Hub::changed`](crate::Hub::changed).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a> {
    notify: &'a Notify,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.version.load(Ordering::SeqCst) != self.seen {
            return Poll::Ready(());
        }
        {
            let mut wakers = self
                .notify
                .wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
        }
        if self.notify.version.load(Ordering::SeqCst) != self.seen {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(
            futures_util::task::noop_waker_ref(),
        ))
    }

    /// The change lands right after the condition was read false, before the wait starts:
    /// the window `Hub::closed` once had (issue 16, item 2), made deterministic.
    #[test]
    fn until_sees_a_change_made_right_after_the_check() {
        let notify = Notify::default();
        let done = AtomicBool::new(false);
        let mut checks = 0;
        let mut until = std::pin::pin!(notify.until(|| {
            checks += 1;
            let now = done.load(Ordering::SeqCst);
            if checks == 1 {
                // another thread ends the last connection here
                done.store(true, Ordering::SeqCst);
                notify.notify();
            }
            now
        }));
        assert!(
            poll_once(until.as_mut()).is_ready(),
            "the change between check and wait was missed: this wait never ends"
        );
    }
}
