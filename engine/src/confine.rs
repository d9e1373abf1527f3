//! Where the paths a spec names may lead.
//!
//! A spec names files to read (`source.path`), to resume from
//! (`source.offset_file`) and to write (`sink.path`, `sink.fallback_sqlite`,
//! `dead_letter.path`). Run on one's own machine (`queuelab run`) they may
//! be anywhere ([`Files::Anywhere`]); on a shared server they must resolve
//! inside configured folders ([`Files::Confined`] with [`FileRoots`]), and
//! never onto the server's own store.
//!
//! Resolution follows what the kernel will do when the file is opened:
//! the deepest part of the path that exists is canonicalised (symlinks
//! followed, `..` applied physically), and the part that does not exist
//! yet is appended as plain names (`..` there is refused, and so is a
//! dangling symlink, which would be followed on creation). The result must
//! lie inside a root. The engine opens exactly the resolved paths
//! ([`SpecPaths`]), so what was checked is what is opened.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use shared::spec::{DeadLetterSpec, FieldError, PipelineSpec, SinkSpec, SourceSpec, SpecError};

/// A path a spec may not use: the field at fault and why, in words that
/// show the path only as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct Refusal {
    /// The spec field, such as `sink.path`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl From<Refusal> for FieldError {
    fn from(r: Refusal) -> Self {
        FieldError {
            path: r.field,
            message: r.message,
        }
    }
}

/// The folders a shared server lets specs use, and the files inside them
/// it never lets a spec touch (its own store and job folders).
#[derive(Debug, Clone)]
pub struct FileRoots {
    /// Canonical roots; relative paths resolve against the first.
    roots: Vec<PathBuf>,
    /// Files no spec may name (the store and its side files).
    protected_files: Vec<PathBuf>,
    /// Folders no spec may reach into (the jobs' leftovers).
    protected_dirs: Vec<PathBuf>,
}

impl FileRoots {
    /// Confines paths to `roots` (created if missing, then canonicalised);
    /// the first one is where relative paths resolve. At least one root.
    pub fn new(roots: &[PathBuf]) -> std::io::Result<Self> {
        if roots.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "at least one files root is needed",
            ));
        }
        let roots = roots
            .iter()
            .map(|r| {
                std::fs::create_dir_all(r)?;
                std::fs::canonicalize(r)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            roots,
            protected_files: Vec::new(),
            protected_dirs: Vec::new(),
        })
    }

    /// The same protections over other roots.
    pub fn with_roots(&self, roots: &[PathBuf]) -> std::io::Result<Self> {
        Ok(Self {
            protected_files: self.protected_files.clone(),
            protected_dirs: self.protected_dirs.clone(),
            ..Self::new(roots)?
        })
    }

    /// Never lets a spec name the SQLite database `db`, nor its `-wal`,
    /// `-shm` and `-journal` files, even where a root contains them.
    pub fn protect_database(mut self, db: &Path) -> Self {
        let db = absolute(db);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            self.protected_files
                .push(physical(&file).unwrap_or_else(|| file.clone()));
        }
        self
    }

    /// Never lets a spec name `dir` or anything under it.
    pub fn protect_dir(mut self, dir: &Path) -> Self {
        let dir = absolute(dir);
        self.protected_dirs
            .push(physical(&dir).unwrap_or_else(|| dir.clone()));
        self
    }

    /// The canonical roots, first the one relative paths resolve against.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Where `path` (as written in `field`) leads, if that is inside a root
    /// and not one of the protected files.
    pub(crate) fn resolve(&self, field: &str, path: &str) -> Result<PathBuf, Refusal> {
        let refuse = |message: String| Refusal {
            field: field.to_owned(),
            message,
        };
        let joined = self.roots[0].join(path);
        let Some(resolved) = physical(&joined) else {
            return Err(refuse(format!(
                "`{path}` must be inside the server's files root"
            )));
        };
        if !self.roots.iter().any(|r| resolved.starts_with(r)) {
            return Err(refuse(format!(
                "`{path}` must be inside the server's files root"
            )));
        }
        if self.protected_files.contains(&resolved)
            || self.protected_dirs.iter().any(|d| resolved.starts_with(d))
        {
            return Err(refuse(format!(
                "`{path}` is one of the server's own files (its store or job folders)"
            )));
        }
        Ok(resolved)
    }
}

/// `path` made absolute against the working directory, without touching
/// the file system beyond that.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Where an absolute `path` physically leads: its deepest existing
/// ancestor canonicalised, then the names that do not exist yet. A `..`
/// in that remainder, or an existing entry that cannot be canonicalised
/// (a dangling symlink, which a create would follow), gives `None`.
fn physical(path: &Path) -> Option<PathBuf> {
    let parts: Vec<Component<'_>> = path.components().collect();
    for existing in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..existing].iter().collect();
        match std::fs::canonicalize(&prefix) {
            Ok(mut out) => {
                for part in &parts[existing..] {
                    match part {
                        Component::Normal(name) => out.push(name),
                        Component::CurDir => {}
                        _ => return None,
                    }
                }
                return Some(out);
            }
            // There, but not followable: refuse rather than guess.
            Err(_) if std::fs::symlink_metadata(&prefix).is_ok() => return None,
            Err(_) => {}
        }
    }
    None
}

/// What a job's paths may name.
#[derive(Debug, Clone)]
pub enum Files {
    /// Anything the process can reach; relative paths resolve against
    /// `base` (empty: the working directory). For `queuelab run`.
    Anywhere {
        /// Where relative paths resolve.
        base: PathBuf,
    },
    /// Only inside the roots, never the server's own files. For
    /// `queuelab serve`.
    Confined(Arc<FileRoots>),
}

impl Default for Files {
    fn default() -> Self {
        Files::Anywhere {
            base: PathBuf::new(),
        }
    }
}

impl Files {
    /// Where `path`, written in `field`, leads under this policy.
    pub(crate) fn resolve(&self, field: &str, path: &str) -> Result<PathBuf, Refusal> {
        match self {
            Files::Anywhere { base } => Ok(base.join(path)),
            Files::Confined(roots) => roots.resolve(field, path),
        }
    }

    /// Resolves every path `spec` names, reporting every refusal with its
    /// field.
    pub(crate) fn resolve_spec(&self, spec: &PipelineSpec) -> Result<SpecPaths, SpecError> {
        let mut paths = SpecPaths::default();
        let mut errors = Vec::new();
        for (field, path) in named_paths(spec) {
            match self.resolve(field, path) {
                Ok(at) => {
                    paths.0.insert(path.to_owned(), at);
                }
                Err(refusal) => errors.push(refusal.into()),
            }
        }
        if errors.is_empty() {
            Ok(paths)
        } else {
            Err(SpecError { errors })
        }
    }
}

/// Every path a spec names, with its field, in document order.
fn named_paths(spec: &PipelineSpec) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    if let SourceSpec::File {
        path, offset_file, ..
    } = &spec.source
    {
        out.push(("source.path", path.as_str()));
        if let Some(o) = offset_file {
            out.push(("source.offset_file", o.as_str()));
        }
    }
    match &spec.sink {
        SinkSpec::File { path, .. } | SinkSpec::Sqlite { path, .. } => {
            out.push(("sink.path", path.as_str()));
        }
        SinkSpec::Postgres {
            fallback_sqlite: Some(path),
            ..
        } => out.push(("sink.fallback_sqlite", path.as_str())),
        _ => {}
    }
    match &spec.dead_letter {
        DeadLetterSpec::FileAt { path } | DeadLetterSpec::Sqlite { path, .. } => {
            out.push(("dead_letter.path", path.as_str()));
        }
        DeadLetterSpec::File => {}
    }
    out
}

/// The resolved paths of one spec: what the engine opens for each path
/// the spec names.
#[derive(Debug, Clone, Default)]
pub struct SpecPaths(HashMap<String, PathBuf>);

impl SpecPaths {
    /// Where the spec's `written` path leads. A path that was never
    /// resolved is an error, so nothing unchecked is ever opened.
    pub fn get(&self, written: &str) -> Result<&Path, UncheckedPath> {
        self.0
            .get(written)
            .map(PathBuf::as_path)
            .ok_or_else(|| UncheckedPath(written.to_owned()))
    }
}

/// A path the engine was asked to open that was never resolved against
/// the files policy (so it is not opened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` was not checked against the files policy")]
pub struct UncheckedPath(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        base: PathBuf,
        roots: FileRoots,
    }

    /// `<tmp>/root` (with `data/` inside, holding a store) and `<tmp>/outside`.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(base.join("root/sub")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), "x").unwrap();
        std::fs::write(base.join("root/in.jsonl"), "{}\n").unwrap();
        std::fs::create_dir_all(base.join("root/data/jobs")).unwrap();
        std::fs::write(base.join("root/data/queuelab.db"), "").unwrap();
        let roots = FileRoots::new(&[base.join("root")])
            .unwrap()
            .protect_database(&base.join("root/data/queuelab.db"))
            .protect_dir(&base.join("root/data/jobs"));
        Fixture {
            _dir: dir,
            base,
            roots,
        }
    }

    fn refused(f: &Fixture, path: &str) -> Refusal {
        f.roots
            .resolve("sink.path", path)
            .expect_err(&format!("`{path}` must be refused"))
    }

    #[test]
    fn relative_paths_resolve_against_the_first_root() {
        let f = fixture();
        let root = f.base.join("root");
        assert_eq!(
            f.roots.resolve("source.path", "in.jsonl").unwrap(),
            root.join("in.jsonl")
        );
        assert_eq!(
            f.roots.resolve("sink.path", "sub/./out.jsonl").unwrap(),
            root.join("sub/out.jsonl")
        );
        let absolute = root.join("sub/x.db");
        assert_eq!(
            f.roots
                .resolve("sink.path", absolute.to_str().unwrap())
                .unwrap(),
            absolute
        );
    }

    #[test]
    fn dot_dot_is_applied_and_may_not_leave_the_root() {
        let f = fixture();
        assert_eq!(
            f.roots.resolve("sink.path", "sub/../in.jsonl").unwrap(),
            f.base.join("root/in.jsonl")
        );
        for path in ["../outside/secret", "../../etc/passwd", "sub/../../outside"] {
            let r = refused(&f, path);
            assert_eq!(r.field, "sink.path");
            assert_eq!(
                r.message,
                format!("`{path}` must be inside the server's files root")
            );
        }
        refused(&f, "/etc/passwd");
        refused(&f, f.base.join("outside/secret").to_str().unwrap());
    }

    #[test]
    fn the_part_that_does_not_exist_yet_may_not_climb() {
        let f = fixture();
        assert_eq!(
            f.roots.resolve("sink.path", "new/dir/out.jsonl").unwrap(),
            f.base.join("root/new/dir/out.jsonl")
        );
        // `new/..` would be fine lexically, but `new` does not exist: the
        // kernel could not even follow it, and a later mkdir might make it
        // a symlink. Refused.
        refused(&f, "new/../in.jsonl");
        refused(&f, "new/../../outside/x");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_to_where_they_lead() {
        let f = fixture();
        let root = f.base.join("root");
        std::os::unix::fs::symlink(f.base.join("outside"), root.join("out-link")).unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("in-link")).unwrap();
        std::os::unix::fs::symlink(f.base.join("outside/nothing"), root.join("dangling")).unwrap();
        refused(&f, "out-link/secret");
        refused(&f, "out-link/new-file");
        refused(&f, "dangling");
        refused(&f, "dangling/x");
        assert_eq!(
            f.roots.resolve("sink.path", "in-link/a.jsonl").unwrap(),
            root.join("sub/a.jsonl"),
            "a link that stays inside is fine, and resolved to its target"
        );
    }

    #[test]
    fn the_store_and_job_folders_are_never_a_target() {
        let f = fixture();
        for path in [
            "data/queuelab.db",
            "data/queuelab.db-wal",
            "data/queuelab.db-shm",
            "data/queuelab.db-journal",
            "data/./queuelab.db",
            "sub/../data/queuelab.db",
            "data/jobs",
            "data/jobs/j1/leftovers.jsonl",
        ] {
            let r = refused(&f, path);
            assert!(r.message.contains("server's own files"), "{path}: {r}");
            assert!(!r.message.contains(f.base.to_str().unwrap()), "{r}");
        }
        assert!(f.roots.resolve("sink.path", "data/other.db").is_ok());
        assert!(f.roots.resolve("sink.path", "data/queuelab.db2").is_ok());
    }

    #[test]
    fn several_roots_each_admit_their_own_files() {
        let f = fixture();
        let two = f
            .roots
            .with_roots(&[f.base.join("root/sub"), f.base.join("outside")])
            .unwrap();
        assert_eq!(
            two.resolve("sink.path", "a.jsonl").unwrap(),
            f.base.join("root/sub/a.jsonl"),
            "relative paths go to the first root"
        );
        let other = f.base.join("outside/secret");
        assert_eq!(
            two.resolve("source.path", other.to_str().unwrap()).unwrap(),
            other
        );
        assert!(two.resolve("sink.path", "../in.jsonl").is_err());
        let store = f.base.join("root/data/queuelab.db");
        assert!(
            FileRoots::new(&[f.base.join("root")])
                .unwrap()
                .resolve("sink.path", store.to_str().unwrap())
                .is_ok(),
            "only protected when asked"
        );
        let created = f.base.join("made/by/new");
        FileRoots::new(std::slice::from_ref(&created)).unwrap();
        assert!(created.is_dir(), "roots are created");
        assert!(FileRoots::new(&[]).is_err());
    }

    #[test]
    fn a_spec_is_resolved_field_by_field() {
        let f = fixture();
        let files = Files::Confined(Arc::new(f.roots.clone()));
        let spec = PipelineSpec::parse(
            r#"
name = "x"
source = { kind = "file", path = "in.jsonl", offset_file = "/etc/x.offset" }
sink = { kind = "sqlite", path = "data/queuelab.db" }
dead_letter = { kind = "file_at", path = "dl.jsonl" }
"#,
            shared::spec::SpecFormat::Toml,
        )
        .unwrap();
        let err = files.resolve_spec(&spec).unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(fields, ["source.offset_file", "sink.path"]);

        let anywhere = Files::Anywhere {
            base: PathBuf::from("queuelab-data"),
        };
        let paths = anywhere.resolve_spec(&spec).unwrap();
        assert_eq!(
            paths.get("in.jsonl").unwrap(),
            Path::new("queuelab-data/in.jsonl")
        );
        assert_eq!(
            paths.get("/etc/x.offset").unwrap(),
            Path::new("/etc/x.offset")
        );
        assert!(paths.get("never-named").is_err());
    }
}
