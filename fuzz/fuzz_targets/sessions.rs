//! Arbitrary session scenarios — login (right or wrong password), refresh with the current
//! or an older token, logout, password change, disable/enable, access-token use and clock
//! moves — played against the identity layer and checked step by step against the plain
//! model of `crm_core::testkit::session_model` (rotation, grace window, reuse detection,
//! revocation, expiry). The same model backs the `session_model` property test.
//!
//! The input is a `Vec<Step>` decoded by `arbitrary` (as the `operations` target's is): every
//! value is bounded by its type (one of the first four sessions, one of the first six access
//! tokens, a clock move on either side of each time limit), so the target reads as the
//! scenarios it plays.
#![no_main]

use arbitrary::Arbitrary;
use crm_core::testkit::session_model::{Op, run};
use libfuzzer_sys::fuzz_target;

/// Longer scenarios add little over short ones and slow the fuzzer down.
const MAX_STEPS: usize = 60;

/// One step of a scenario.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Step {
    /// Log in, with the right or a wrong password.
    Login { right_password: bool },
    /// Refresh a session with its current token or one replaced a rotation or two ago.
    Refresh { session: Slot, token: Age },
    /// Log a session out.
    Logout { session: Slot },
    /// Change the password from a session, keeping that one.
    ChangePassword { keep: Slot },
    /// Disable (true) or enable the user, as the admin.
    SetDisabled(bool),
    /// Use an access token issued earlier.
    UseAccess { token: Issued },
    /// Move the clock forward.
    Advance(Move),
}

/// One of the first four sessions opened (a step on one not opened yet is skipped).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Slot {
    First,
    Second,
    Third,
    Fourth,
}

/// Which refresh token of a session: the current one or an earlier one.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Age {
    Current,
    OneBack,
    TwoBack,
}

/// One of the first six access tokens issued (a step on one not issued yet is skipped).
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Issued {
    First,
    Second,
    Third,
    Fourth,
    Fifth,
    Sixth,
}

/// A clock move, on either side of the 10 s grace window, the 900 s access-token lifetime
/// and the 30-day refresh lifetime.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Move {
    OneSecond,
    FiveSeconds,
    InsideGrace,
    PastGrace,
    TenMinutes,
    PastAccessLifetime,
    TenDays,
    PastRefreshLifetime,
}

impl Move {
    fn seconds(self) -> i64 {
        match self {
            Move::OneSecond => 1,
            Move::FiveSeconds => 5,
            Move::InsideGrace => 9,
            Move::PastGrace => 11,
            Move::TenMinutes => 600,
            Move::PastAccessLifetime => 901,
            Move::TenDays => 10 * 86_400,
            Move::PastRefreshLifetime => 31 * 86_400,
        }
    }
}

impl From<Step> for Op {
    fn from(step: Step) -> Op {
        match step {
            Step::Login { right_password } => Op::Login { right_password },
            Step::Refresh { session, token } => Op::Refresh {
                session: session as usize,
                back: token as usize,
            },
            Step::Logout { session } => Op::Logout {
                session: session as usize,
            },
            Step::ChangePassword { keep } => Op::ChangePassword {
                keep: keep as usize,
            },
            Step::SetDisabled(disabled) => Op::SetDisabled(disabled),
            Step::UseAccess { token } => Op::UseAccess {
                token: token as usize,
            },
            Step::Advance(by) => Op::Advance(by.seconds()),
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return;
    }
    run(steps.into_iter().map(Op::from).collect());
});
