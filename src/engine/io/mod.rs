//! The engine's I/O: the hash-chained [`journal`], the realm's install [`lock`] and the artifact
//! [`store`], in a state folder or a state database ([`db`]), picked by [`state`]. These only
//! read and write; what the records mean is decided in [`super::model`].

pub mod db;
pub mod journal;
pub mod lock;
pub mod state;
pub mod store;
