//! How `cluster.wait` polls (pure): exponential backoff from a first interval by a factor up to
//! a cap, under the step's overall deadline. A throttled poll jumps to the cap. So a cluster that
//! becomes ready after time T is noticed at most `cap` later, and the number of polls before the
//! interval reaches the cap is about ⌈log₂(cap / first)⌉ (`docs/engine.md`, `docs/benchmarks.md`).

use std::time::Duration;

use super::facts::Status;

/// What a wait does with a resource's status (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// It is ready.
    Ready,
    /// It is on its way: poll again (the status, for the progress line).
    Poll(&'static str),
    /// It will never become ready by waiting: stop now, with the cloud's reason.
    Stop(String),
}

/// Whether to keep waiting on a resource in `status`: creating or updating resources are
/// polled; a resource being deleted, one that failed, or one in a state this realmctl does not
/// know will not become ready by waiting, so the wait stops at once with the cloud's word for
/// it rather than polling until the step's timeout.
pub fn wait_on(status: &Status) -> Wait {
    match status {
        Status::Active => Wait::Ready,
        Status::Creating => Wait::Poll("CREATING"),
        Status::Updating => Wait::Poll("UPDATING"),
        Status::Deleting => Wait::Stop("it is being deleted".into()),
        Status::Failed(why) => Wait::Stop(format!("it failed: {}", crate::text::one_line(why))),
        Status::Other(s) => Wait::Stop(format!(
            "it is in state {}, which will not become ready by waiting",
            crate::text::one_line(s)
        )),
    }
}

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
        self.next_asked(n, throttled, None, left)
    }

    /// Like [`Backoff::next`], when the cloud asked to wait at least `asked` (`Retry-After`):
    /// never sooner than it asked, so when that is beyond the deadline there is no next poll.
    pub fn next_asked(
        &self,
        n: u32,
        throttled: bool,
        asked: Option<Duration>,
        left: Duration,
    ) -> Option<Duration> {
        if left.is_zero() || asked.is_some_and(|a| a > left) {
            return None;
        }
        Some(
            self.delay(n, throttled)
                .max(asked.unwrap_or_default())
                .min(left),
        )
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
    fn only_creating_and_updating_resources_are_waited_on() {
        assert_eq!(wait_on(&Status::Active), Wait::Ready);
        assert_eq!(wait_on(&Status::Creating), Wait::Poll("CREATING"));
        assert_eq!(wait_on(&Status::Updating), Wait::Poll("UPDATING"));
        assert!(matches!(wait_on(&Status::Deleting), Wait::Stop(m) if m.contains("deleted")));
        match wait_on(&Status::Failed("subnet full\n\x1b[2J".into())) {
            Wait::Stop(m) => assert_eq!(m, "it failed: subnet full\\n\\u{1b}[2J"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(wait_on(&Status::Other("DEGRADED".into())), Wait::Stop(m) if m.contains("DEGRADED"))
        );
    }

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
    fn a_retry_after_is_never_cut_short() {
        let s = Duration::from_secs;
        // Longer than the backoff: waited in full.
        assert_eq!(WAIT.next_asked(1, true, Some(s(45)), s(100)), Some(s(45)));
        // Shorter: the backoff wins.
        assert_eq!(WAIT.next_asked(5, false, Some(s(1)), s(100)), Some(s(30)));
        // Beyond the deadline: no poll sooner than asked, so none at all.
        assert_eq!(WAIT.next_asked(1, true, Some(s(45)), s(44)), None);
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
