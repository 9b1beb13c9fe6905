//! `--cache-from`: local images whose history stands in for the build cache.
//!
//! Docker's classic builder (moby `image/cache`): when a step misses the
//! local cache, each `--cache-from` image is a candidate if the step's
//! parent is a prefix of it — the parent's history entries equal the
//! image's first ones and its layers (`rootfs.diff_ids`) are the image's
//! first layers — and the image's next history entry was made by the same
//! instruction (its `created_by` equals the step's: `|N ARG=… cmd` for RUN,
//! `COPY file:<content hash> in /dst` for COPY). On a match the builder
//! makes the step's image from the parent plus that entry and its layer
//! (or takes the candidate itself when the entry is its last) and keeps to
//! that candidate for the rest of the build.
//!
//! berth does the same, with one more check: every history entry berth
//! writes carries the step's *portable* cache key (`berth_cache_key`: the
//! step key without the parent image ID, i.e. the instruction, the build
//! args it sees, the `RUN --mount`/`--network` options, and for COPY/ADD
//! the digest of the source files' bytes and modes and the
//! `--chown`/`--chmod` flags). An entry that has one must carry this step's
//! key; an entry without one (an image built by docker) matches on
//! `created_by` alone, as in docker, except for the steps whose
//! `created_by` does not say everything (COPY/ADD, RUN with mounts or a
//! network option), which then run. The parent chain is checked as docker
//! does, so the key needs no parent. The config bytes carry the field
//! through `save`/`load`, `push`/`pull`: a fresh daemon (or one whose
//! cache `builder prune` emptied) hits from a loaded image.

use berth_core::Digest;
use berth_image::config::{History, ImageConfig};

/// A `--cache-from` image as resolved at the start of the build.
#[derive(Clone)]
pub(crate) struct CacheSource {
    pub id: Digest,
    pub config: ImageConfig,
}

/// A build step as the cache sees it.
pub(crate) struct Step {
    /// The key in the local cache: the parent image and `portable`.
    pub local: String,
    /// The key without the parent, written into the history entry.
    pub portable: String,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// Whether the step makes no layer (config-only instructions).
    pub empty_layer: bool,
    /// Whether `created_by` alone does not identify the step, so a history
    /// entry without a berth key cannot stand for it.
    pub needs_key: bool,
}

impl Step {
    pub fn new(parent: &str, portable: String, created_by: String) -> Step {
        let local = super::cache::KeyBuilder::default()
            .part("parent", parent)
            .part("step", &portable)
            .finish();
        Step {
            local,
            portable,
            created_by,
            empty_layer: false,
            needs_key: false,
        }
    }

    pub fn empty_layer(mut self) -> Step {
        self.empty_layer = true;
        self
    }

    pub fn needs_key(mut self, yes: bool) -> Step {
        self.needs_key = yes;
        self
    }
}

/// moby's `isValidParent`: `parent` (`None`: scratch) is a prefix of
/// `image` — equal history entries and equal first layers.
pub(crate) fn is_valid_parent(image: &ImageConfig, parent: Option<&ImageConfig>) -> bool {
    if image.history.is_empty() {
        return false;
    }
    let Some(p) = parent else {
        return true;
    };
    if p.history.is_empty() && p.rootfs.diff_ids.is_empty() {
        return true;
    }
    p.history.len() < image.history.len()
        && p.rootfs.diff_ids.len() <= image.rootfs.diff_ids.len()
        && p.history == image.history[..p.history.len()]
        && p.rootfs.diff_ids == image.rootfs.diff_ids[..p.rootfs.diff_ids.len()]
}

/// Whether history entry `h` records `step`.
pub(crate) fn entry_matches(h: &History, step: &Step) -> bool {
    if h.created_by.as_deref().unwrap_or("") != step.created_by || h.empty_layer != step.empty_layer
    {
        return false;
    }
    match &h.cache_key {
        Some(k) => *k == step.portable,
        None => !step.needs_key,
    }
}

/// A source that can stand for `step` on `parent`: its index in
/// `sources`, the history index of the step's entry, and whether that
/// entry is the source's last.
pub(crate) fn find(
    sources: &[CacheSource],
    parent: Option<&ImageConfig>,
    step: &Step,
) -> Option<(usize, usize, bool)> {
    let at = parent.map_or(0, |p| p.history.len());
    sources.iter().enumerate().find_map(|(i, s)| {
        let h = s.config.history.get(at)?;
        (is_valid_parent(&s.config, parent) && entry_matches(h, step)).then_some((
            i,
            at,
            at + 1 == s.config.history.len(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_image::config::RootFs;

    fn entry(created_by: &str, key: Option<&str>, empty: bool) -> History {
        History {
            created: Some("2026-11-28T00:00:00Z".into()),
            created_by: Some(created_by.into()),
            empty_layer: empty,
            cache_key: key.map(str::to_string),
            ..Default::default()
        }
    }

    fn image(history: Vec<History>, layers: &[&str]) -> ImageConfig {
        ImageConfig {
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: layers
                    .iter()
                    .map(|l| Digest::sha256_of(l.as_bytes()))
                    .collect(),
            },
            history,
            ..Default::default()
        }
    }

    #[test]
    fn matches_on_parent_prefix_created_by_and_key() {
        let base = image(vec![entry("base", None, false)], &["b"]);
        let built = image(
            vec![
                entry("base", None, false),
                entry("/bin/sh -c #(nop)  ENV A=1", Some("k1"), true),
                entry("/bin/sh -c echo hi", Some("k2"), false),
            ],
            &["b", "run"],
        );
        let sources = vec![CacheSource {
            id: Digest::sha256_of(b"built"),
            config: built.clone(),
        }];
        let env = Step::new("p", "k1".into(), "/bin/sh -c #(nop)  ENV A=1".into()).empty_layer();
        assert_eq!(find(&sources, Some(&base), &env), Some((0, 1, false)));
        // The key must agree when the entry has one.
        let other = Step::new("p", "kX".into(), "/bin/sh -c #(nop)  ENV A=1".into()).empty_layer();
        assert_eq!(find(&sources, Some(&base), &other), None);
        // So must the parent: another base is no prefix.
        let base2 = image(vec![entry("base2", None, false)], &["b"]);
        assert_eq!(find(&sources, Some(&base2), &env), None);
        let base3 = image(vec![entry("base", None, false)], &["c"]);
        assert_eq!(find(&sources, Some(&base3), &env), None);
        // The last entry is the source itself.
        let mid = image(built.history[..2].to_vec(), &["b"]);
        let run = Step::new("p", "k2".into(), "/bin/sh -c echo hi".into());
        assert_eq!(find(&sources, Some(&mid), &run), Some((0, 2, true)));
        // A layer step never stands for a config-only one.
        let run_empty = Step::new("p", "k2".into(), "/bin/sh -c echo hi".into()).empty_layer();
        assert_eq!(find(&sources, Some(&mid), &run_empty), None);
    }

    #[test]
    fn docker_entries_match_on_created_by_unless_a_key_is_needed() {
        let h = entry("/bin/sh -c make", None, false);
        let s = Step::new("p", "k".into(), "/bin/sh -c make".into());
        assert!(entry_matches(&h, &s));
        assert!(!entry_matches(&h, &s.needs_key(true)));
        // Scratch is a prefix of anything with history.
        assert!(is_valid_parent(&image(vec![h], &["x"]), None));
        assert!(!is_valid_parent(&image(vec![], &[]), None));
    }
}
