//! What readers see of batches that are acknowledged but not yet committed to the redb file.
//!
//! The shard writer keeps one redb write transaction open across several batches and commits it
//! only now and then (see "Coalesced redb commits" in `shard.rs`): each redb commit costs a
//! copy-on-write of every page it touches, and consecutive batches touch the same pages. A
//! batch is durable once its log record is synced, so it is acknowledged then; from that moment
//! readers must see it. The writer therefore publishes each such batch as a [`Layer`] (its rows
//! and its change-log entries) before answering, and drops the layers once a redb commit holds
//! them.
//!
//! A reader loads the published [`Overlay`] first and begins its redb read transaction second,
//! then uses only the layers above the LSN that read transaction holds. The layers it keeps
//! continue the redb snapshot without a gap (commits happen between batches, and the overlay
//! it loaded holds every batch acknowledged since the last commit before the load), so a reader
//! sees one consistent state and never waits for the writer.

use crate::ids::Lsn;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Changed rows of one batch: physical key -> new value (`None`: deleted).
pub(crate) type Rows = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One acknowledged batch that the redb file does not hold yet.
pub(crate) struct Layer {
    /// The batch's last LSN (its entries run from the previous layer's, or the redb file's,
    /// last LSN + 1).
    pub last_lsn: Lsn,
    /// The oldest LSN the change log keeps after the batch (its trimming).
    pub first_lsn: Lsn,
    pub rows: Rows,
    /// Encoded change-log entries, in LSN order.
    pub entries: Vec<(Lsn, Vec<u8>)>,
}

/// The layers published for readers, oldest first.
#[derive(Default)]
pub(crate) struct Overlay {
    layers: Vec<Arc<Layer>>,
}

impl Overlay {
    /// This overlay with one more layer on top.
    pub(crate) fn with(&self, layer: Layer) -> Overlay {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.extend(self.layers.iter().cloned());
        layers.push(Arc::new(layer));
        Overlay { layers }
    }
}

/// The writer's published overlay, shared with readers.
#[derive(Default)]
pub(crate) struct Published {
    overlay: RwLock<Arc<Overlay>>,
    /// Layers published so far: batches answered before a redb commit held them.
    layers_total: AtomicU64,
}

impl Published {
    /// The current overlay. Load it *before* beginning the redb read transaction it goes with.
    pub(crate) fn load(&self) -> Arc<Overlay> {
        Arc::clone(&self.overlay.read())
    }

    /// Publishes `overlay`, which has one layer more than the current one.
    pub(crate) fn push(&self, overlay: Arc<Overlay>) {
        *self.overlay.write() = overlay;
        self.layers_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes an empty overlay (a redb commit holds every layer).
    pub(crate) fn clear(&self) {
        *self.overlay.write() = Arc::default();
    }

    pub(crate) fn layers_total(&self) -> u64 {
        self.layers_total.load(Ordering::Relaxed)
    }
}

/// The layers of an overlay above a redb snapshot's LSN: what a reader adds to that snapshot.
#[derive(Clone, Default)]
pub(crate) struct OverlayView {
    overlay: Arc<Overlay>,
    /// Index of the first layer above the snapshot.
    from: usize,
}

impl OverlayView {
    /// `overlay` was loaded before the redb snapshot whose last LSN is `snapshot_lsn` began.
    pub(crate) fn above(overlay: Arc<Overlay>, snapshot_lsn: Lsn) -> OverlayView {
        let from = overlay
            .layers
            .partition_point(|l| l.last_lsn <= snapshot_lsn);
        OverlayView { overlay, from }
    }

    fn layers(&self) -> &[Arc<Layer>] {
        &self.overlay.layers[self.from..]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.layers().is_empty()
    }

    /// The last LSN the view holds, if it holds any layer.
    pub(crate) fn last_lsn(&self) -> Option<Lsn> {
        self.layers().last().map(|l| l.last_lsn)
    }

    /// The change log's first LSN after the view's last layer, if it holds any layer.
    pub(crate) fn first_lsn(&self) -> Option<Lsn> {
        self.layers().last().map(|l| l.first_lsn)
    }

    /// The newest value of `key` in the view: `None` when no layer has it, `Some(None)` when
    /// the newest layer that has it deleted it.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<&Vec<u8>>> {
        self.layers()
            .iter()
            .rev()
            .find_map(|layer| layer.rows.get(key).map(Option::as_ref))
    }

    /// The view's rows in a key range, newest value per key, ascending.
    pub(crate) fn range(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> BTreeMap<&[u8], Option<&Vec<u8>>> {
        let mut merged = BTreeMap::new();
        for layer in self.layers() {
            for (k, v) in layer.rows.range::<[u8], _>((lower, upper)) {
                merged.insert(k.as_slice(), v.as_ref());
            }
        }
        merged
    }

    /// Encoded change-log entries with LSN above `after`, ascending, at most `limit`.
    pub(crate) fn entries_after(&self, after: Lsn, limit: usize) -> Vec<&[u8]> {
        self.layers()
            .iter()
            .filter(|l| l.last_lsn > after)
            .flat_map(|l| l.entries.iter())
            .filter(|(lsn, _)| *lsn > after)
            .take(limit)
            .map(|(_, bytes)| bytes.as_slice())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(last_lsn: Lsn, rows: &[(&str, Option<&str>)]) -> Layer {
        Layer {
            last_lsn,
            first_lsn: 1,
            rows: rows
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
                .collect(),
            entries: vec![(last_lsn, last_lsn.to_le_bytes().to_vec())],
        }
    }

    #[test]
    fn a_view_keeps_only_the_layers_above_its_snapshot_and_the_newest_value_wins() {
        let overlay = Overlay::default()
            .with(layer(3, &[("a", Some("1")), ("b", Some("1"))]))
            .with(layer(5, &[("a", Some("2")), ("c", Some("2"))]))
            .with(layer(6, &[("b", None)]));
        let overlay = Arc::new(overlay);

        let all = OverlayView::above(Arc::clone(&overlay), 0);
        assert_eq!(all.get(b"a"), Some(Some(&b"2".to_vec())));
        assert_eq!(all.get(b"b"), Some(None));
        assert_eq!(all.get(b"z"), None);
        assert_eq!(all.last_lsn(), Some(6));
        let range = all.range(
            Bound::Included(b"a".as_slice()),
            Bound::Excluded(b"c".as_slice()),
        );
        assert_eq!(
            range.into_iter().collect::<Vec<_>>(),
            vec![
                (b"a".as_slice(), Some(&b"2".to_vec())),
                (b"b".as_slice(), None)
            ]
        );
        assert_eq!(all.entries_after(3, 10).len(), 2);
        assert_eq!(all.entries_after(0, 1), vec![3u64.to_le_bytes().as_slice()]);

        // A snapshot that already holds LSN 5: only the last layer is added to it.
        let late = OverlayView::above(Arc::clone(&overlay), 5);
        assert_eq!(late.get(b"a"), None);
        assert_eq!(late.get(b"b"), Some(None));
        assert_eq!(late.last_lsn(), Some(6));
        // A snapshot that holds everything: nothing to add.
        let none = OverlayView::above(overlay, 6);
        assert!(none.is_empty());
        assert_eq!(none.last_lsn(), None);
    }
}
