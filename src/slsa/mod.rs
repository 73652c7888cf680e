//! SLSA provenance of a Nix image: an in-toto Statement v1 whose predicate (SLSA Provenance v1)
//! says exactly what the image was made from: the installable, the flake's locked reference and
//! inputs, and every store path in the image with its NAR hash. Nothing in it depends on the
//! wall clock or the machine, so the same commit and closure give the same statement; the CI
//! run that pushed it is named where the CI says (`builder`).

mod builder;
mod statement;

pub use builder::RunDetails;
pub use statement::{statement, BuildFacts, BUILD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE};
