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
