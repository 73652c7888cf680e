//! Images made with nixpkgs' `dockerTools`: `streamLayeredImage` / `buildLayeredImage`, pushed
//! from their conf.json and the store without the image tarball ever being written; and image
//! archives Nix already built (`buildImage`, `pullImage`, a `fromImage` base), read as they are.

pub mod archive;
mod conf;
mod source;

pub use archive::{read_archive, ArchiveError, ArchiveImage, ArchiveLayer};
pub use conf::{ConfError, DockerToolsConf};
pub use source::{find_conf, is_conf_shaped, ConfSource, Evaluated};
