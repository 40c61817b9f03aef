//! The one bounded HTTP/1 server (header-read and idle timeouts, a connection cap that sheds
//! idle connections first, graceful shutdown), shared with the loopback stand-ins: it lives in
//! its own crate, `crates/serve`, so the stand-ins need nothing else of realmctl.

pub use realmctl_serve::{Bounds, http1};
