//! How `cluster.wait` polls (pure): exponential backoff from a first interval by a factor up to
//! a cap, under the step's overall deadline. A throttled poll jumps to the cap. So a cluster that
//! becomes ready after time T is noticed at most `cap` later, and the number of polls before the
//! interval reaches the cap is about ⌈log₂(cap / first)⌉ (`docs/engine.md`, `docs/benchmarks.md`).

use std::time::Duration;

/// The polling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first interval.
    pub first: Duration,
    /// Each interval is the previous one times this.
    pub factor: u32,
    /// No interval is longer than this.
    pub cap: Duration,
}

/// The policy of `cluster.wait`: 2 s, doubling, at most 30 s.
pub const WAIT: Backoff = Backoff {
    first: Duration::from_secs(2),
    factor: 2,
    cap: Duration::from_secs(30),
};

impl Backoff {
    /// The interval after poll number `n` (from 1), or the cap when the last poll was throttled.
    pub fn delay(&self, n: u32, throttled: bool) -> Duration {
        if throttled {
            return self.cap;
        }
        let growth = self
            .factor
            .checked_pow(n.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first.saturating_mul(growth).min(self.cap)
    }

    /// The interval after poll `n`, shortened so the next poll happens by `left` (the time to
    /// the deadline); `None` when no time is left.
    pub fn next(&self, n: u32, throttled: bool, left: Duration) -> Option<Duration> {
        if left.is_zero() {
            return None;
        }
        Some(self.delay(n, throttled).min(left))
    }

    /// How many polls a wait of `ready_after` takes at most (ready noticed at the first poll
    /// after it), for the benchmark's bound.
    pub fn polls_for(&self, ready_after: Duration) -> u32 {
        let mut t = Duration::ZERO;
        let mut n = 1;
        while t < ready_after {
            t += self.delay(n, false);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_up_to_the_cap_and_throttling_jumps_to_it() {
        let d: Vec<_> = (1..=6).map(|n| WAIT.delay(n, false).as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 16, 30, 30]);
        assert_eq!(WAIT.delay(1, true), WAIT.cap);
        assert_eq!(WAIT.delay(u32::MAX, false), WAIT.cap, "no overflow");
    }

    #[test]
    fn the_deadline_shortens_the_last_interval_and_ends_the_wait() {
        assert_eq!(
            WAIT.next(5, false, Duration::from_secs(7)),
            Some(Duration::from_secs(7))
        );
        assert_eq!(WAIT.next(1, false, Duration::ZERO), None);
    }

    #[test]
    fn polls_grow_logarithmically_then_linearly() {
        // Ready at once: the first poll sees it.
        assert_eq!(WAIT.polls_for(Duration::ZERO), 1);
        // 2+4+8+16 = 30 s of growth, then one poll per 30 s.
        assert_eq!(WAIT.polls_for(Duration::from_secs(30)), 5);
        assert_eq!(WAIT.polls_for(Duration::from_secs(600)), 5 + 19);
    }
}
