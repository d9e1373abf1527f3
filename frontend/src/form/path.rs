//! Field paths such as `stages[0].queue.capacity` — the same spelling the
//! server uses in its validation errors — read and written on a spec held
//! as JSON, so a form field and the error about it share one key.

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Splits `a.b[2].c` into its steps; an empty path is the root.
fn parse(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_owned()));
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                if let Ok(n) = rest[1..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &rest[end + 1..];
            }
        } else {
            out.push(Seg::Key(rest.to_owned()));
        }
    }
    out
}

/// The value at `path`, if there is one.
pub fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    parse(path).iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

/// Sets the value at `path` (creating objects on the way), or removes it
/// when `value` is `None` so the server's default applies.
pub fn set(root: &mut Value, path: &str, value: Option<Value>) {
    let segs = parse(path);
    let Some((last, parents)) = segs.split_last() else {
        if let Some(v) = value {
            *root = v;
        }
        return;
    };
    let mut cur = root;
    for seg in parents {
        cur = match seg {
            Seg::Key(k) => {
                if !cur.is_object() {
                    *cur = Value::Object(Map::new());
                }
                cur.as_object_mut()
                    .expect("just made an object")
                    .entry(k.clone())
                    .or_insert(Value::Null)
            }
            Seg::Index(i) => match cur.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
        };
    }
    match (last, value) {
        (Seg::Key(k), Some(v)) => {
            if !cur.is_object() {
                *cur = Value::Object(Map::new());
            }
            cur.as_object_mut().expect("an object").insert(k.clone(), v);
        }
        (Seg::Key(k), None) => {
            if let Some(o) = cur.as_object_mut() {
                o.remove(k);
            }
        }
        (Seg::Index(i), Some(v)) => {
            if let Some(slot) = cur.get_mut(*i) {
                *slot = v;
            }
        }
        (Seg::Index(i), None) => {
            if let Some(a) = cur.as_array_mut().filter(|a| *i < a.len()) {
                a.remove(*i);
            }
        }
    }
}

/// The parent of a path: `stages[0].op` for `stages[0].op.kind`.
pub fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

/// How a field shows a value: text as is, numbers plainly, lists joined.
pub fn display(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| display(Some(x)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

/// A typed-in number as JSON: an integer when it is one, else a float; text
/// that is no number stays text, so the server names the field in its
/// error; empty means "use the default".
pub fn number(text: &str) -> Option<Value> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(n) = t.parse::<u64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = t.parse::<i64>() {
        return Some(Value::from(n));
    }
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Some(Value::from(x)),
        _ => Some(Value::String(t.to_owned())),
    }
}

/// A comma-separated list as a JSON array of strings (empty: the default).
pub fn list(text: &str) -> Option<Value> {
    let items: Vec<Value> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.to_owned()))
        .collect();
    (!items.is_empty()).then_some(Value::Array(items))
}

/// An element id for the field at `path`.
pub fn dom_id(path: &str) -> String {
    let mut id = String::from("f-");
    id.extend(
        path.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }),
    );
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_and_write_the_server_spelling() {
        let mut v = json!({"name": "x", "stages": [{"name": "a", "queue": {"capacity": 10}}]});
        assert_eq!(get(&v, "stages[0].queue.capacity"), Some(&json!(10)));
        assert_eq!(get(&v, "stages[1].name"), None);
        set(&mut v, "stages[0].queue.when_full", Some(json!("reject")));
        set(&mut v, "stages[0].retry.max_attempts", Some(json!(3)));
        set(&mut v, "stages[0].queue.capacity", None);
        assert_eq!(
            v["stages"][0],
            json!({"name": "a", "queue": {"when_full": "reject"}, "retry": {"max_attempts": 3}})
        );
        set(&mut v, "stages[0]", None);
        assert_eq!(v["stages"], json!([]));
        set(&mut v, "stages[4].name", Some(json!("ignored")));
        assert_eq!(v["stages"], json!([]), "no element is invented");
        assert_eq!(get(&v, ""), Some(&v));
    }

    #[test]
    fn typed_text_becomes_the_json_the_server_expects() {
        assert_eq!(number("12"), Some(json!(12)));
        assert_eq!(number(" 2.5 "), Some(json!(2.5)));
        assert_eq!(number("-1"), Some(json!(-1)));
        assert_eq!(number("lots"), Some(json!("lots")));
        assert_eq!(number(""), None);
        assert_eq!(list("id, ts ,,level"), Some(json!(["id", "ts", "level"])));
        assert_eq!(list(" , "), None);
        assert_eq!(display(Some(&json!(["a", "b"]))), "a, b");
        assert_eq!(display(Some(&json!(4))), "4");
        assert_eq!(parent("stages[0].op.kind"), "stages[0].op");
        assert_eq!(dom_id("stages[0].op.kind"), "f-stages-0--op-kind");
    }
}
