//! Search tables (ids 100..=109): the tenant's query-time vocabulary. The index itself is not
//! here: it is derived from the other tables and lives in `DATA_DIR/index/` (see
//! `engine/src/search/indexer.rs`).

use mercato_storage::{Record, TableDef};
use serde::{Deserialize, Serialize};

/// The tenant's search settings (one row; absent means [`SearchSettings::default`]).
pub const SEARCH_SETTINGS: TableDef<(), SearchSettings> = TableDef::new(100, "search_settings");

/// A tenant's query-time vocabulary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Groups of equivalent terms (`["tee", "t-shirt"]`): a query term of a group also matches
    /// every other term of it. Lowercase, trimmed; a term may have several words.
    pub synonyms: Vec<Vec<String>>,
    /// Words dropped from queries (unless the query would be left empty). Lowercase, trimmed.
    pub stop_words: Vec<String>,
}

impl Record for SearchSettings {
    const KIND: u16 = 100;
    const VERSION: u16 = 1;
}
