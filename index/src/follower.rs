//! [`ChangeFollower`]: a named, durable reader of one shard's change log.

use mercato_storage::{ChangeEntry, Command, Lsn, ShardId, Storage, StorageError};

/// Reads one shard's change log on behalf of a named, registered reader.
#[derive(Debug)]
pub struct ChangeFollower {
    name: String,
    shard: ShardId,
    position: Lsn,
}

impl ChangeFollower {
    /// Registers `name` on `shard` starting after `position` (0 for the whole retained log, or
    /// the LSN of a snapshot the caller has already processed). If the reader exists already,
    /// its saved position wins: a restart continues where the previous run acknowledged.
    pub fn register<C: Command>(
        storage: &Storage<C>,
        name: &str,
        shard: ShardId,
        position: Lsn,
    ) -> Result<Self, StorageError> {
        let position = match storage.readers(shard)?.get(name) {
            Some(&saved) => saved,
            None => {
                storage.set_reader(shard, name, position)?;
                position
            }
        };
        Ok(ChangeFollower {
            name: name.to_string(),
            shard,
            position,
        })
    }

    /// The last LSN this follower has acknowledged.
    pub fn position(&self) -> Lsn {
        self.position
    }

    /// The next page of entries after the acknowledged position (at most `limit`). Reading does
    /// not move the position: call [`ChangeFollower::acknowledge`] once the entries are processed.
    pub fn next_page<C: Command>(
        &self,
        storage: &Storage<C>,
        limit: usize,
    ) -> Result<Vec<ChangeEntry>, StorageError> {
        Ok(storage.changes(self.shard, self.position, limit)?.entries)
    }

    /// Records durably that everything up to `lsn` is processed.
    pub fn acknowledge<C: Command>(
        &mut self,
        storage: &Storage<C>,
        lsn: Lsn,
    ) -> Result<(), StorageError> {
        if lsn > self.position {
            storage.set_reader(self.shard, &self.name, lsn)?;
            self.position = lsn;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mercato_storage::{ApplyError, Record, StorageConfig, TableDef, TenantId, TenantWrite};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    struct Note(u64);
    impl Record for Note {
        const KIND: u16 = 1;
        const VERSION: u16 = 1;
    }
    const NOTES: TableDef<u64, Note> = TableDef::new(1, "notes");

    #[derive(Serialize, Deserialize)]
    struct Put(u64);
    impl Record for Put {
        const KIND: u16 = 2;
        const VERSION: u16 = 1;
    }
    impl Command for Put {
        type Output = ();
        type Rejection = ();
        fn tenant(&self) -> TenantId {
            TenantId(1)
        }
        fn apply(&self, tx: &mut TenantWrite<'_>) -> Result<(), ApplyError<()>> {
            Ok(tx.put(&NOTES, &self.0, &Note(self.0))?)
        }
    }

    #[test]
    fn a_follower_resumes_from_its_acknowledged_position_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let shard = {
            let storage: Storage<Put> = Storage::open(StorageConfig::new(dir.path())).unwrap();
            let shard = storage.shard_of(TenantId(1));
            let mut follower = ChangeFollower::register(&storage, "test", shard, 0).unwrap();
            for i in 0..10 {
                storage.execute_blocking(Put(i)).unwrap();
            }
            let page = follower.next_page(&storage, 4).unwrap();
            assert_eq!(
                page.iter().map(|e| e.lsn).collect::<Vec<_>>(),
                vec![1, 2, 3, 4]
            );
            follower.acknowledge(&storage, 4).unwrap();
            // Unacknowledged reads do not move the position.
            assert_eq!(follower.next_page(&storage, 1).unwrap()[0].lsn, 5);
            storage.close().unwrap();
            shard
        };
        let storage: Storage<Put> = Storage::open(StorageConfig::new(dir.path())).unwrap();
        let follower = ChangeFollower::register(&storage, "test", shard, 0).unwrap();
        assert_eq!(follower.position(), 4);
        assert_eq!(follower.next_page(&storage, 100).unwrap().len(), 6);
    }
}
