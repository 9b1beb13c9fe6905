//! The Compose Specification, pure: load compose files, interpolate their
//! values, merge several `-f` files, and normalize the result into a typed
//! [`model::Project`]; then convert a project into the swarm objects of a
//! stack ([`stack`]).
//!
//! Loading one file goes: YAML text → JSON tree with every value
//! interpolated ([`yaml`]) → schema key check and canonical form, long
//! syntaxes and maps ([`canon`]) → typed check of that file alone, so a
//! type error names the file it is in. The canonical trees are then merged
//! in order ([`merge`]) and the merged tree decoded into the model.
//! Nothing here reads files or the process environment: the caller passes
//! the texts and the variables.

pub mod canon;
pub mod de;
pub mod duration;
pub mod error;
pub mod interpolate;
pub mod merge;
pub mod model;
pub mod shell;
pub mod stack;
pub mod syntax;
pub mod yaml;

pub use error::Error;
pub use interpolate::Environment;
pub use model::Project;

/// One compose file: the name to report it by and its text.
#[derive(Debug, Clone)]
pub struct ComposeFile {
    pub name: String,
    pub content: String,
}

/// Loads, merges and normalizes `files` (later ones override earlier).
/// Relative `file:` paths of secrets and configs are resolved against
/// `project_dir` (the directory of the first file, as Compose does).
pub fn load(files: &[ComposeFile], env: &Environment, project_dir: &str) -> Result<Project, Error> {
    let mut merged: Option<serde_json::Value> = None;
    for f in files {
        let mut tree = yaml::parse(&f.name, &f.content, env)?;
        canon::canonicalize(&f.name, &mut tree)?;
        let mut alone = tree.clone();
        yaml::strip_markers(&mut alone);
        decode(&f.name, alone)?;
        match &mut merged {
            None => {
                let mut t = tree;
                yaml::strip_markers(&mut t);
                merged = Some(t);
            }
            Some(base) => merge::merge(base, tree),
        }
    }
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    let mut tree = merged.unwrap_or_else(|| serde_json::json!({}));
    yaml::strip_markers(&mut tree);
    let mut project = decode(&names.join(", "), tree)?;
    for obj in project
        .secrets
        .values_mut()
        .chain(project.configs.values_mut())
    {
        if let Some(file) = &obj.file {
            obj.file = Some(resolve(project_dir, file));
        }
    }
    for svc in project.services.values_mut() {
        for f in &mut svc.env_file {
            match f {
                model::EnvFile::Path(p) | model::EnvFile::Long { path: p, .. } => {
                    *p = resolve(project_dir, p)
                }
            }
        }
    }
    Ok(project)
}

fn decode(file: &str, tree: serde_json::Value) -> Result<Project, Error> {
    serde_path_to_error::deserialize::<_, Project>(tree).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        Error::new(file, &path, de::reword(&e.inner().to_string()))
    })
}

/// `dir` + `./x` → `dir/x`; absolute paths are kept.
fn resolve(dir: &str, file: &str) -> String {
    if file.starts_with('/') || dir.is_empty() {
        return file.to_string();
    }
    let file = file.strip_prefix("./").unwrap_or(file);
    format!("{}/{}", dir.trim_end_matches('/'), file)
}
