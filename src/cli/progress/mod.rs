//! Drawing the library's progress events: bars on a terminal, one line per event in a log.

mod bars;
mod lines;

pub use bars::ProgressBars;
pub use lines::ProgressLines;
