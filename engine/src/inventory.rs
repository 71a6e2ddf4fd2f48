//! The inventory domain. (Its actions are being built for issue 3; the enums below are empty, so no
//! command of this domain can exist yet.)

use crate::command::{Applied, Ctx};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InventoryAction {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InventoryOutput {}

pub(crate) fn apply(action: &InventoryAction, _ctx: &mut Ctx<'_, '_>) -> Applied<InventoryOutput> {
    match *action {}
}
