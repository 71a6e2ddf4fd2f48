//! Model-based test: random command sequences against the engine and against a `BTreeMap`
//! must give the same state, including across reopen and bucket moves.

use crate::common::*;
use mercato_storage::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Step {
    Cmd(Kv),
    Reopen,
    MoveBucketOf(u64, u16),
}

fn step() -> impl Strategy<Value = Step> {
    let tenant = 1u64..6;
    let key = 0u64..12;
    prop_oneof![
        6 => (tenant.clone(), key.clone(), any::<u32>()).prop_map(|(tenant, key, v)| Step::Cmd(Kv::Put { tenant, key, value: u64::from(v) })),
        2 => (tenant.clone(), key.clone()).prop_map(|(tenant, key)| Step::Cmd(Kv::Delete { tenant, key })),
        3 => (tenant.clone(), key.clone(), any::<u16>()).prop_map(|(tenant, key, v)| Step::Cmd(Kv::Insert { tenant, key, value: u64::from(v) })),
        3 => (tenant.clone(), key.clone(), key.clone(), 0u64..200_000).prop_map(|(tenant, from, to, amount)| Step::Cmd(Kv::Transfer { tenant, from, to, amount })),
        1 => Just(Step::Reopen),
        1 => (tenant, 0u16..4).prop_map(|(t, s)| Step::MoveBucketOf(t, s)),
    ]
}

/// The model's version of `Kv::apply`. Returns whether the command was accepted.
fn apply_model(model: &mut BTreeMap<(u64, u64), u64>, cmd: &Kv) -> bool {
    match *cmd {
        Kv::Put { tenant, key, value } => {
            model.insert((tenant, key), value);
        }
        Kv::Delete { tenant, key } => {
            model.remove(&(tenant, key));
        }
        Kv::Insert { tenant, key, value } => {
            if model.contains_key(&(tenant, key)) {
                return false;
            }
            model.insert((tenant, key), value);
        }
        Kv::Transfer {
            tenant,
            from,
            to,
            amount,
        } => {
            let to_balance = model.get(&(tenant, to)).copied().unwrap_or(0);
            let mut next = model.clone();
            next.insert((tenant, to), to_balance + amount);
            let from_balance = next.get(&(tenant, from)).copied().unwrap_or(0);
            if from_balance < amount {
                return false;
            }
            next.insert((tenant, from), from_balance - amount);
            *model = next;
        }
        Kv::BlobRef { .. } | Kv::Panic { .. } | Kv::ScanDescAfterWrites { .. } => {
            unreachable!("not generated")
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn engine_matches_a_btreemap_model(steps in proptest::collection::vec(step(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = open(dir.path());
        let mut model = BTreeMap::new();
        for step in &steps {
            match step {
                Step::Cmd(cmd) => {
                    let accepted = apply_model(&mut model, cmd);
                    let result = s.execute_blocking(cmd.clone());
                    prop_assert_eq!(result.is_ok(), accepted, "{:?} -> {:?}", cmd, result);
                }
                Step::Reopen => {
                    s.close().unwrap();
                    drop(s);
                    s = open(dir.path());
                }
                Step::MoveBucketOf(t, shard) => {
                    s.move_bucket(TenantId(*t).bucket(), ShardId(*shard)).unwrap();
                }
            }
        }
        for tenant in 1..6u64 {
            let expected: Vec<(u64, u64)> = model.range((tenant, 0)..(tenant + 1, 0)).map(|(&(_, k), &v)| (k, v)).collect();
            prop_assert_eq!(all(&s, tenant), expected, "tenant {}", tenant);
        }
        s.close().unwrap();
        drop(s);
        let report = verify_data_dir(dir.path()).unwrap();
        prop_assert!(report.is_consistent(), "{:?}", report.problems);
    }
}
