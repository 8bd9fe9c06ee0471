//! A minimum transfer rate for a client, judged over windows of time spent waiting on that
//! client only: time the server itself is busy (a disk write, a metadata call) is never
//! counted against it. A window in which the client moved too little ends the transfer; a
//! client that moves nothing for a whole window is cut whatever the rate (at least one byte
//! per window is required).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    bytes_per_sec: u64,
    window: Duration,
}

impl MinRate {
    /// `window` is at least a millisecond.
    pub fn new(bytes_per_sec: u64, window: Duration) -> Self {
        Self {
            bytes_per_sec,
            window: window.max(Duration::from_millis(1)),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// What a client must move in each window (at least one byte).
    pub fn bytes_per_window(&self) -> u64 {
        let bytes = self.bytes_per_sec as f64 * self.window.as_secs_f64();
        (bytes as u64).max(1)
    }
}

/// The client was slower than its [`MinRate`] over a whole window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow;

/// The current window of one transfer.
#[derive(Debug, Clone)]
pub struct RateWindow {
    rate: MinRate,
    waited: Duration,
    moved: u64,
}

impl RateWindow {
    pub fn new(rate: MinRate) -> Self {
        Self {
            rate,
            waited: Duration::ZERO,
            moved: 0,
        }
    }

    /// How much longer the client may be waited on before this window is judged: the
    /// deadline of the next wait.
    pub fn remaining(&self) -> Duration {
        self.rate
            .window
            .saturating_sub(self.waited)
            .max(Duration::from_millis(1))
    }

    /// Records a wait on the client of `waited` that moved `bytes`. When the window is full
    /// it is judged, then a new one starts.
    pub fn record(&mut self, waited: Duration, bytes: u64) -> Result<(), TooSlow> {
        self.waited += waited;
        self.moved = self.moved.saturating_add(bytes);
        if self.waited < self.rate.window {
            return Ok(());
        }
        let enough = self.moved >= self.rate.bytes_per_window();
        self.waited = Duration::ZERO;
        self.moved = 0;
        if enough {
            Ok(())
        } else {
            Err(TooSlow)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_window_is_judged_on_what_moved_while_waiting() {
        let mut window = RateWindow::new(MinRate::new(100, 10 * SEC));
        assert_eq!(window.remaining(), 10 * SEC);
        // Plenty of bytes, then long waits: the window that moved 1000 bytes passes.
        assert_eq!(window.record(SEC, 1000), Ok(()));
        assert_eq!(window.remaining(), 9 * SEC);
        assert_eq!(window.record(9 * SEC, 0), Ok(()));
        // A new window: a trickle of one byte a second fails when the window is full.
        for _ in 0..9 {
            assert_eq!(window.record(SEC, 1), Ok(()));
        }
        assert_eq!(window.record(SEC, 1), Err(TooSlow));
    }

    #[test]
    fn a_silent_client_fails_even_without_a_rate() {
        let mut window = RateWindow::new(MinRate::new(0, 5 * SEC));
        assert_eq!(window.record(5 * SEC, 1), Ok(()));
        assert_eq!(window.record(5 * SEC, 0), Err(TooSlow));
    }

    #[test]
    fn writes_that_never_waited_do_not_fill_a_window() {
        let mut window = RateWindow::new(MinRate::new(1 << 20, SEC));
        for _ in 0..1000 {
            assert_eq!(window.record(Duration::ZERO, 1), Ok(()));
        }
        assert_eq!(window.remaining(), SEC);
    }
}
