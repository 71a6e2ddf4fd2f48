//! The catalog domain. (Its actions are being built for issue 3; the enums below are empty, so no
//! command of this domain can exist yet.)

use crate::command::{Applied, Ctx};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CatalogAction {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogOutput {}

pub(crate) fn apply(action: &CatalogAction, _ctx: &mut Ctx<'_, '_>) -> Applied<CatalogOutput> {
    match *action {}
}
