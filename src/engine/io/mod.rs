//! The engine's I/O: the hash-chained [`journal`], the realm's install [`lock`] and the artifact
//! [`store`]. These only read and write; what the records mean is decided in
//! [`super::model`].

pub mod journal;
pub mod lock;
pub mod store;
