//! Typeahead suggestions.

use std::time::Instant;

use mercato_index::IndexOp;

use crate::support::{open, product};

#[test]
fn suggestions_complete_words_by_frequency_then_whole_names() {
    let t = open();
    t.put(vec![
        product(1, 1, "Hammer drill"),
        product(1, 2, "Claw hammer"),
        product(1, 3, "Sledge hammer"),
        product(1, 4, "Hammock"),
        product(1, 5, "Hamburg sausage"),
    ]);
    assert_eq!(
        t.index.suggest(1, "Ham", 5).unwrap(),
        vec![
            "hammer",
            "hamburg",
            "hammock",
            "hamburg sausage",
            "hammer drill"
        ]
    );
    assert_eq!(
        t.index.suggest(1, "ham", 2).unwrap(),
        vec!["hammer", "hamburg"]
    );
    // Several words: whole names first, then the last word completed after the others.
    assert_eq!(
        t.index.suggest(1, "claw ham", 5).unwrap(),
        vec!["claw hammer", "claw hamburg", "claw hammock"]
    );
    // A finished word completes names only.
    assert_eq!(
        t.index.suggest(1, "hammer ", 5).unwrap(),
        vec!["hammer drill"]
    );
    assert!(t.index.suggest(1, "", 5).unwrap().is_empty());
    assert!(t.index.suggest(1, "xyz", 5).unwrap().is_empty());
    assert!(t.index.suggest(1, "ham", 0).unwrap().is_empty());
}

#[test]
fn deleted_products_stop_being_suggested() {
    let t = open();
    t.put(vec![product(1, 1, "Hammock"), product(1, 2, "Hammer")]);
    t.index
        .apply(vec![IndexOp::DeleteProduct { tenant: 1, id: 1 }])
        .unwrap();
    t.index.commit(100).unwrap();
    assert_eq!(t.index.suggest(1, "ham", 5).unwrap(), vec!["hammer"]);
    // A renamed product suggests its new name only.
    t.put(vec![product(1, 2, "Mallet")]);
    assert!(t.index.suggest(1, "ham", 5).unwrap().is_empty());
    assert_eq!(t.index.suggest(1, "mal", 5).unwrap(), vec!["mallet"]);
}

#[test]
fn suggestions_take_a_few_milliseconds_on_thousands_of_products() {
    let t = open();
    let words = [
        "hammer", "hamper", "hammock", "handle", "hand", "saw", "drill", "bit",
    ];
    t.put(
        (0..5_000u64)
            .map(|id| {
                let name = format!(
                    "{} {} {id}",
                    words[id as usize % words.len()],
                    words[(id as usize / 8) % words.len()]
                );
                product(1, id, &name)
            })
            .collect(),
    );
    let started = Instant::now();
    let mut got = Vec::new();
    for _ in 0..20 {
        got = t.index.suggest(1, "ha", 8).unwrap();
    }
    let each = started.elapsed() / 20;
    // Equally frequent words come alphabetically.
    assert_eq!(got[..5], ["hammer", "hammock", "hamper", "hand", "handle"]);
    // Generous for a debug build on a shared machine; release is far below a millisecond.
    assert!(each.as_millis() < 50, "{each:?}");
}
