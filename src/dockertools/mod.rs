//! Images described with nixpkgs' `dockerTools.streamLayeredImage` / `buildLayeredImage`,
//! pushed from their conf.json and the store, without the image tarball ever being written.

mod conf;
mod source;

pub use conf::{ConfError, DockerToolsConf};
pub use source::{find_conf, ConfSource, Evaluated};
