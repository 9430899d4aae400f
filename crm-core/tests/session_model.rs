//! State-machine property test of sessions: random sequences of login, refresh (with the
//! current or an old token), logout, password change, disable/enable, access-token use and
//! clock moves, checked step by step against the plain model of
//! `crm_core::testkit::session_model` (which the fuzz target `sessions` drives too).

use crm_core::testkit::session_model::{Op, run};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|right_password| Op::Login { right_password }),
        6 => (0usize..4, prop_oneof![3 => Just(0usize), 1 => 1usize..3]).prop_map(|(session, back)| Op::Refresh { session, back }),
        1 => (0usize..4).prop_map(|session| Op::Logout { session }),
        1 => (0usize..4).prop_map(|keep| Op::ChangePassword { keep }),
        1 => any::<bool>().prop_map(Op::SetDisabled),
        3 => (0usize..6).prop_map(|token| Op::UseAccess { token }),
        4 => prop::sample::select(vec![1i64, 5, 9, 11, 600, 901, 10 * 86400, 31 * 86400]).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, .. ProptestConfig::default() })]
    #[test]
    fn sessions_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}
