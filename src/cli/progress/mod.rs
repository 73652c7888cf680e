//! Drawing the library's progress events: bars on a terminal, one line per event in a log; the
//! warnings kept for `--json`.

mod bars;
mod lines;
mod warnings;

pub use bars::ProgressBars;
pub use lines::ProgressLines;
pub use warnings::WarningLog;
