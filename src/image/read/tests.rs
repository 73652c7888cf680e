//! The read models against manifests, indexes and configs as registries serve them.

use super::*;
use crate::image::media_types::OCI_CONFIG;

fn digest(s: &str) -> Digest {
    Digest::of(s.as_bytes())
}

#[test]
fn reads_store_paths_comments() {
    assert_eq!(
        parse_store_paths_comment("store paths: ['/nix/store/aaa-x', '/nix/store/bbb-y']"),
        Some(vec!["/nix/store/aaa-x".into(), "/nix/store/bbb-y".into()])
    );
    assert_eq!(
        parse_store_paths_comment("store paths: [\"/nix/store/aaa-x\"]"),
        Some(vec!["/nix/store/aaa-x".into()])
    );
    assert_eq!(parse_store_paths_comment("store paths: []"), Some(vec![]));
    // Another store directory is still a list of absolute paths.
    assert_eq!(
        parse_store_paths_comment("store paths: ['/gnu/store/x']"),
        Some(vec!["/gnu/store/x".into()])
    );
    for other in [
        "",
        "buildkit.dockerfile.v0",
        "store paths: ",
        "store paths: ['/nix/store/a'",
        "store paths: [/nix/store/a]",
        "store paths: ['nix/store/a']",
        "store paths: ['/nix/store/a\"]",
        "store paths: ['/nix/store/a', ]",
        "store paths: ['/nix/store/a b']",
        "Store Paths: ['/nix/store/a']",
    ] {
        assert_eq!(parse_store_paths_comment(other), None, "{other:?}");
    }
}

#[test]
fn a_base_image_layer_is_named_by_its_member() {
    let c = ConfigSummary {
        layer_comments: vec![
            Some("store paths: ['0a1b/layer.tar']".into()),
            Some("store paths: ['/nix/store/a-x']".into()),
            Some("store paths: ['a b.tar']".into()),
        ],
        ..Default::default()
    };
    assert_eq!(c.base_member(0, 3).as_deref(), Some("0a1b/layer.tar"));
    assert_eq!(c.store_paths(0, 3), None);
    assert_eq!(c.base_member(1, 3), None);
    assert_eq!(c.base_member(2, 3), None, "not a plain member name");
}

#[test]
fn pairs_history_with_layers_or_says_nothing() {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"1970-01-01T00:00:01Z",
           "config":{{"Entrypoint":["/bin/app"],"Cmd":null,"Env":[],"WorkingDir":"","Labels":{{"a":"b"}}}},
           "rootfs":{{"type":"layers","diff_ids":["{}","{}"]}},
           "history":[{{"created_by":"ENV x","empty_layer":true}},
                      {{"comment":"store paths: ['/nix/store/a-x']"}},
                      {{"comment":"COPY . /"}}]}}"#,
        digest("1"),
        digest("2")
    );
    let c = ConfigSummary::parse(config.as_bytes()).unwrap();
    assert_eq!(c.platform.as_ref().unwrap().to_string(), "linux/amd64");
    assert_eq!(c.created.as_deref(), Some("1970-01-01T00:00:01Z"));
    assert_eq!(
        c.run.keys().collect::<Vec<_>>(),
        ["Entrypoint", "Labels"],
        "null and empty fields are left out"
    );
    assert_eq!(c.store_paths(0, 2), Some(vec!["/nix/store/a-x".into()]));
    assert_eq!(c.store_paths(1, 2), None, "another comment");
    assert_eq!(c.diff_id(1, 2), Some(digest("2")));
    // One layer more than the history says: no pairing at all.
    assert_eq!(c.store_paths(0, 3), None);
    assert_eq!(c.base_member(0, 2), None, "a store path is no base member");
    assert_eq!(c.diff_id(0, 3), None);
}

#[test]
fn odd_configs_say_less_and_garbage_is_an_error() {
    let c = ConfigSummary::parse(
        br#"{"created":5,"os":"linux","history":"x","rootfs":{"diff_ids":["md5:1"]},"config":[]}"#,
    )
    .unwrap();
    assert_eq!(c.created, None);
    assert_eq!(c.platform.unwrap().to_string(), "linux/unknown");
    assert!(c.run.is_empty() && c.layer_comments.is_empty());
    assert_eq!(c.diff_ids, vec![None]);
    assert_eq!(
        ConfigSummary::parse(b"{}").unwrap(),
        ConfigSummary::default()
    );
    assert!(ConfigSummary::parse(b"[1]").is_err());
    assert!(ConfigSummary::parse(b"<html>").is_err());
}

#[test]
fn reads_manifests_of_both_kinds() {
    let (c, l) = (digest("config"), digest("layer"));
    for media_type in [Some(OCI_MANIFEST), Some(DOCKER_MANIFEST), None] {
        let field = media_type
            .map(|t| format!(r#""mediaType":"{t}","#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"schemaVersion":2,{field}"config":{{"mediaType":"{OCI_CONFIG}","digest":"{c}","size":10}},
               "layers":[{{"mediaType":"x","digest":"{l}","size":5,"annotations":{{"k":"v"}},"urls":["u"]}}],
               "annotations":{{"a":"b"}}}}"#
        );
        let Document::Image(m) = Document::parse(json.as_bytes()).unwrap() else {
            panic!("not read as an image: {json}")
        };
        assert_eq!(m.media_type, media_type.unwrap_or(OCI_MANIFEST));
        assert_eq!((m.config.digest, m.config.size), (c.clone(), 10));
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].annotations["k"], "v");
        assert_eq!(m.annotations["a"], "b");
    }
}

#[test]
fn reads_indexes_and_picks_platforms() {
    let (a, b, u) = (digest("a"), digest("b"), digest("u"));
    for media_type in [Some(OCI_INDEX), Some(DOCKER_MANIFEST_LIST), None] {
        let field = media_type
            .map(|t| format!(r#""mediaType":"{t}","#))
            .unwrap_or_default();
        let json = format!(
            r#"{{"schemaVersion":2,{field}"manifests":[
                {{"mediaType":"{OCI_MANIFEST}","digest":"{a}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{b}","size":2,"platform":{{"os":"linux","architecture":"arm64","os.features":["x"]}}}},
                {{"mediaType":"{OCI_MANIFEST}","digest":"{u}","size":3,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#
        );
        let Document::Index(ix) = Document::parse(json.as_bytes()).unwrap() else {
            panic!("not read as an index: {json}")
        };
        assert_eq!(ix.media_type, media_type.unwrap_or(OCI_INDEX));
        let pick = |s: &str| {
            ix.select(&PlatformSpec::parse(s).unwrap())
                .map(|m| m.digest.clone())
        };
        assert_eq!(pick("linux/amd64"), Some(a.clone()));
        assert_eq!(pick("linux/arm64"), Some(b.clone()));
        assert_eq!(pick("linux/arm64/v8"), Some(b.clone()), "arm64 means v8");
        assert_eq!(pick("linux/arm64/v9"), None);
        assert_eq!(pick("linux/amd64/v2"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert_eq!(
            ix.platforms(),
            ["linux/amd64", "linux/arm64", "unknown/unknown"]
        );
    }
}

#[test]
fn refuses_what_is_not_a_manifest() {
    for bad in [
        &b"<html>"[..],
        br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#,
        br#"{"schemaVersion":2}"#,
        br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
        br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
        br#"{"mediaType":"application/vnd.cncf.helm.chart","config":{}}"#,
        br#"{"manifests":[{"digest":"md5:x","size":1}]}"#,
    ] {
        assert!(
            Document::parse(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let schema1 = Document::parse(br#"{"schemaVersion":1}"#).unwrap_err();
    assert!(schema1.contains("schema 1"), "{schema1}");
}
