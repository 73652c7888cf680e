//! A layer measured without keeping it: the size and diff_id of its uncompressed tar, which a
//! docker-archive needs before the layer's bytes (a tar entry's header holds its size), and the
//! digest and size of the compressed blob a registry push would upload, so a local image
//! reports the same layer digests, and the same manifest digest, as a push.
//!
//! One read of the store gives both: the tar is built uncompressed, and what comes out is fed
//! to the push's compressor on its way to a hasher. The compressor takes its input in fixed
//! chunks whatever sizes it is written in, so its output is byte for byte the push's.

use std::io;

use super::output::LayerOutput;
use crate::digest::HashingWriter;
use crate::layer::{build_layer, Compression, LayerDigests, LayerError, LayerSpec};
use crate::stop::Stop;

/// What a layer is, measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MeasuredLayer {
    /// Size of the uncompressed tar (the archive's entry).
    pub tar_size: u64,
    /// The blob a registry push makes of it (compressed as the plan says), and its diff_id.
    pub digests: LayerDigests,
}

/// Reads `spec` from the store once and measures it. Blocking; stops early once `cancel` is stopped.
pub(crate) fn measure_layer(
    spec: &LayerSpec,
    compression: Compression,
    cancel: Stop,
) -> Result<MeasuredLayer, LayerError> {
    let blob = compression
        .encoder(HashingWriter::new(io::sink()))
        .map_err(LayerError::Sink)?;
    let (out, tar) = build_layer(spec, Compression::None, LayerOutput::new(blob, cancel))?;
    let (blob, _) = out.finish();
    let (blob, annotations) = blob.finish().map_err(LayerError::Sink)?;
    let (_, digest, size) = blob.finish();
    Ok(MeasuredLayer {
        // Uncompressed, the "blob" is the tar itself.
        tar_size: tar.size,
        digests: LayerDigests {
            diff_id: tar.diff_id,
            digest,
            size,
            annotations,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::test_plan;
    use crate::layer::DEFAULT_ZSTD_LEVEL;

    #[test]
    fn gives_the_digests_of_the_pushed_blob_and_the_size_of_the_tar() {
        for compression in [
            Compression::default(),
            Compression::Gzip { level: 6 },
            Compression::Zstd {
                level: DEFAULT_ZSTD_LEVEL,
            },
            Compression::None,
        ] {
            for spec in [test_plan::layer(7, true), test_plan::layer(8, false)] {
                let measured = measure_layer(&spec, compression, Stop::default()).unwrap();
                let (_, pushed) = build_layer(&spec, compression, io::sink()).unwrap();
                assert_eq!(measured.digests, pushed, "{compression:?}");
                let (tar, plain) = build_layer(&spec, Compression::None, Vec::new()).unwrap();
                assert_eq!(measured.tar_size, tar.len() as u64);
                assert_eq!(plain.diff_id, pushed.diff_id);
            }
        }
    }

    #[test]
    fn stops_when_cancelled() {
        let cancel = Stop::default();
        cancel.stop();
        let err = measure_layer(&test_plan::layer(9, true), Compression::default(), cancel);
        assert!(matches!(err, Err(LayerError::Sink(_))), "{err:?}");
    }
}
