//! Container names: Docker's rules (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`) and
//! generated `adjective_name` names for containers created without one.

use std::collections::HashMap;
use std::sync::Mutex;

/// A name held by a create or rename in flight (from
/// `Containers::claim_name`); dropping it lets the name go, by then in the
/// container's record or free again.
pub struct NameClaim<'a> {
    claims: &'a Mutex<HashMap<String, String>>,
    name: String,
}

impl<'a> NameClaim<'a> {
    pub(super) fn new(claims: &'a Mutex<HashMap<String, String>>, name: &str) -> Self {
        NameClaim {
            claims,
            name: name.to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for NameClaim<'_> {
    fn drop(&mut self) {
        self.claims
            .lock()
            .expect("name claims lock")
            .remove(&self.name);
    }
}

pub fn validate(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

const LEFT: &[&str] = &[
    "admiring",
    "bold",
    "brave",
    "calm",
    "clever",
    "dazzling",
    "eager",
    "elegant",
    "festive",
    "focused",
    "gallant",
    "gifted",
    "happy",
    "hopeful",
    "jolly",
    "keen",
    "kind",
    "lucid",
    "modest",
    "nifty",
    "optimistic",
    "peaceful",
    "quirky",
    "relaxed",
    "serene",
    "sharp",
    "stoic",
    "tender",
    "trusting",
    "upbeat",
    "vibrant",
    "wizardly",
    "youthful",
    "zealous",
];
const RIGHT: &[&str] = &[
    "allen", "babbage", "bell", "curie", "darwin", "dijkstra", "einstein", "euclid", "faraday",
    "fermi", "franklin", "galileo", "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr",
    "lovelace", "mayer", "meitner", "newton", "noether", "pascal", "ritchie", "shannon",
    "thompson", "torvalds", "turing", "wozniak", "yonath",
];

pub fn generate(taken: &dyn Fn(&str) -> bool) -> String {
    for i in 0.. {
        let l = LEFT[rand::random::<usize>() % LEFT.len()];
        let r = RIGHT[rand::random::<usize>() % RIGHT.len()];
        let name = if i < 10 {
            format!("{l}_{r}")
        } else {
            format!("{l}_{r}{}", rand::random::<u8>() % 10)
        };
        if !taken(&name) {
            return name;
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_name_rules() {
        assert!(validate("web").is_ok());
        assert!(validate("my_app.v2-x").is_ok());
        assert!(validate("a").is_err());
        assert!(validate("-x").is_err());
        assert!(validate("has space").is_err());
        assert!(validate("../x").is_err());
        let n = generate(&|_| false);
        assert!(validate(&n).is_ok() && n.contains('_'));
    }
}
