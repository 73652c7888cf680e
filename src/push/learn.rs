//! What the registry already knows of this image's layers, learnt before anything is uploaded:
//! the manifest under the tag about to be written (the previous version, on a fresh CI runner;
//! each platform's manifest when it is an index), then each `--cache-from`. A manifest that
//! cannot be read teaches nothing; it never fails the push.

use bytes::Bytes;

use super::remote::Remote;
use crate::image::index_children;
use crate::known_layers::LearntLayers;
use crate::progress::{Phase, Reporter, Warning};
use crate::reference::Reference;

/// Most manifests of an index read to learn their layers.
const MAX_LEARNED_MANIFESTS: usize = 16;

/// What was learnt, and the tag's own document as the registry holds it (an unchanged re-push
/// is one that would write exactly these bytes).
pub(super) struct Learnt {
    pub layers: LearntLayers,
    pub current: Option<Bytes>,
}

/// Reads the manifests that may already name this image's layers: `tag`'s in the repository
/// pushed to, then each of `cache_from`.
pub(super) async fn learn_layers(
    client: &impl Remote,
    tag: Option<&str>,
    cache_from: &[Reference],
    reporter: &dyn Reporter,
) -> Learnt {
    let mut learnt = LearntLayers::default();
    let mut current = None;
    let mut sources: Vec<(String, String)> = Vec::new();
    if let Some(tag) = tag {
        sources.push((client.repository().to_owned(), tag.to_owned()));
    }
    for r in cache_from {
        sources.push((r.repository().to_owned(), r.manifest_target()));
    }
    let mut read = 0;
    // Only the very first source is the tag's own document; the others (`--cache-from`, an
    // index's children) never stand for what the tag names.
    let mut first = tag.is_some();
    while let Some((repository, reference)) = (!sources.is_empty()).then(|| sources.remove(0)) {
        let is_tag = std::mem::take(&mut first);
        match client.get_manifest(&repository, &reference).await {
            Ok(Some(bytes)) => {
                if is_tag {
                    current = Some(bytes.clone());
                }
                read += 1;
                let n = learnt.learn(&bytes, &repository);
                if n > 0 {
                    reporter.phase(&Phase::KnownLayers {
                        manifest: format!("{repository}:{reference}"),
                        count: n,
                    });
                }
                for child in index_children(&bytes) {
                    if read + sources.len() < MAX_LEARNED_MANIFESTS {
                        sources.push((repository.clone(), child));
                    }
                }
            }
            Ok(None) => {}
            Err(e) => reporter.warning(&Warning::NotReusing {
                manifest: format!("{repository}:{reference}"),
                reason: e.to_string(),
            }),
        }
    }
    Learnt {
        layers: learnt,
        current,
    }
}
