//! `--user` and `--group-add` resolved against the image's own
//! `/etc/passwd` and `/etc/group`, with runc's `user.GetExecUser` rules
//! (which Docker uses): a numeric user need not exist, a name must; an
//! explicit group replaces the primary group, and supplementary groups come
//! from `/etc/group` membership only when no group was given.
//!
//! The caller reads the two files from the container's rootfs (missing
//! files are empty strings) and passes their contents: this crate does no I/O.

use serde::{Deserialize, Serialize};

use crate::SpecError;

/// Ids above this are refused, as runc does (`maxID`).
const MAX_ID: u64 = (1 << 31) - 1;

/// The identity the container process runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: `/etc/group` memberships, then `--group-add`.
    pub additional_gids: Vec<u32>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn records(file: &str) -> impl Iterator<Item = Vec<&str>> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

fn passwd_entries(file: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(file).filter_map(|f| {
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
        })
    })
}

fn group_entries(file: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(file).filter_map(|f| {
        Some(GroupEntry {
            name: f.first()?,
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn numeric_id(what: &'static str, arg: &str) -> Result<Option<u32>, SpecError> {
    match arg.parse::<u64>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id as u32)),
        Ok(_) => Err(SpecError::UserNotFound {
            what,
            name: arg.to_string(),
            reason: "id out of range".into(),
        }),
        Err(_) => Ok(None),
    }
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) and
/// `group_add` against the contents of the rootfs's `/etc/passwd` and
/// `/etc/group`.
pub fn resolve_user(
    etc_passwd: &str,
    etc_group: &str,
    user: &str,
    group_add: &[String],
) -> Result<ExecUser, SpecError> {
    let (user_arg, group_arg) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, ""),
    };
    let uid_arg = numeric_id("user", user_arg)?;
    let gid_arg = numeric_id("group", group_arg)?;

    let mut out = ExecUser::default();
    let matched = passwd_entries(etc_passwd).find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(uid)) => u.uid == uid,
        (name, None) => u.name == name,
    });
    let matched_name = match matched {
        Some(entry) => {
            out.uid = entry.uid;
            out.gid = entry.gid;
            Some(entry.name)
        }
        None if user_arg.is_empty() => None,
        None => match uid_arg {
            Some(uid) => {
                out.uid = uid;
                None
            }
            None => {
                return Err(SpecError::UserNotFound {
                    what: "user",
                    name: user_arg.to_string(),
                    reason: "no matching entries in passwd file".into(),
                })
            }
        },
    };

    if !group_arg.is_empty() {
        let found = group_entries(etc_group).find(|g| match gid_arg {
            Some(gid) => g.gid == gid,
            None => g.name == group_arg,
        });
        out.gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(SpecError::UserNotFound {
                    what: "group",
                    name: group_arg.to_string(),
                    reason: "no matching entries in group file".into(),
                })
            }
        };
    } else if let Some(name) = matched_name {
        // Supplementary ids only in the implicit form, as runc does.
        out.additional_gids = group_entries(etc_group)
            .filter(|g| g.members.contains(&name))
            .map(|g| g.gid)
            .collect();
    }

    for arg in group_add {
        let gid = match group_entries(etc_group)
            .find(|g| g.name == arg.as_str() || g.gid.to_string() == *arg)
        {
            Some(g) => g.gid,
            None => numeric_id("group", arg)?.ok_or_else(|| SpecError::UserNotFound {
                what: "group",
                name: arg.clone(),
                reason: "no matching entries in group file".into(),
            })?,
        };
        if !out.additional_gids.contains(&gid) {
            out.additional_gids.push(gid);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        audio:x:29:app\n\
        nogroup:x:65534:\n\
        app:x:1000:\n";

    fn r(user: &str, add: &[&str]) -> Result<ExecUser, SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve_user(PASSWD, GROUP, user, &add)
    }

    #[test]
    fn empty_user_is_root_with_its_groups() {
        let u = r("", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        // The default user matches root's passwd entry, so its memberships count.
        assert_eq!(u.additional_gids, vec![10]);
    }

    #[test]
    fn name_resolves_primary_and_supplementary_groups() {
        let u = r("app", &[]).unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10, 29]
            }
        );
    }

    #[test]
    fn numeric_user_without_entry_gets_gid_0() {
        let u = r("4242", &[]).unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
    }

    #[test]
    fn explicit_group_replaces_primary_and_drops_memberships() {
        let u = r("app:audio", &[]).unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 1000,
                gid: 29,
                additional_gids: vec![]
            }
        );
        let u = r("1000:777", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1000, 777));
    }

    #[test]
    fn group_add_by_name_or_number() {
        let u = r("nobody", &["audio", "4000", "29"]).unwrap();
        assert_eq!(u.additional_gids, vec![29, 4000]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            r("ghost", &[]).unwrap_err().to_string(),
            "unable to find user \"ghost\": no matching entries in passwd file"
        );
        assert!(r("app:ghosts", &[])
            .unwrap_err()
            .to_string()
            .contains("\"ghosts\""));
        assert!(r("app", &["ghosts"]).is_err());
        assert!(r("4294967295", &[]).is_err());
    }
}
