//! The data pools a script names, found in its text so that a wrong name is an error before any load.
//!
//! Pool names are plain strings at run time, so Rhai cannot check them when it compiles. Most calls name their pool
//! with a literal, though (`data.claim("users")`), and those are found here with their line and column. A name
//! built at run time is checked when the call runs instead.

/// The `data` methods that take a pool name first.
const METHODS: [&str; 5] = ["claim", "release", "next", "random", "len"];

/// One `data.<method>("<name>"` in a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataRef {
    /// `claim`, `release`, `next`, `random` or `len`.
    pub method: &'static str,
    /// The pool name, as written.
    pub name: String,
    /// 1-based line and column of `data`.
    pub line: usize,
    /// See `line`.
    pub col: usize,
}

/// Every `data.<method>("<literal>"` of `source`, outside `//` comments, in order.
pub(crate) fn data_refs(source: &str) -> Vec<DataRef> {
    let mut found = Vec::new();
    for (line_no, line) in source.lines().enumerate() {
        let code = line.find("//").map_or(line, |at| &line[..at]);
        let mut from = 0;
        while let Some(at) = code[from..].find("data.").map(|i| from + i) {
            from = at + "data.".len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            if let Some((method, name)) = call_at(&code[from..]) {
                let col = code[..at].chars().count() + 1;
                found.push(DataRef { method, name, line: line_no + 1, col });
            }
        }
    }
    found
}

/// `method("name"` or ``method(`name` `` at the start of `rest`: the method and the literal name.
fn call_at(rest: &str) -> Option<(&'static str, String)> {
    let method = METHODS
        .into_iter()
        .find(|m| rest.starts_with(m) && !rest[m.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))?;
    let args = rest[method.len()..].trim_start().strip_prefix('(')?.trim_start();
    let quote = args.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let body = &args[1..];
    let end = body.find(quote)?;
    let (name, after) = (&body[..end], body[end + 1..].trim_start());
    // Escapes, interpolations and expressions (`"us" + x`) make the name a run-time value: checked when it runs.
    let literal = !name.contains('\\') && !name.contains("${") && after.starts_with([',', ')']);
    literal.then(|| (method, name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(source: &str) -> Vec<(&'static str, String, usize, usize)> {
        data_refs(source).into_iter().map(|r| (r.method, r.name, r.line, r.col)).collect()
    }

    #[test]
    fn finds_literal_pool_names_with_their_place() {
        let src = "fn a() {\n    let u = data.claim(\"users\", #{ timeout: 5 });\n    data.release( `users`, u);\n  \
                   let p = data.next(\"items\"); data.len(\"items\");\n}\n";
        assert_eq!(
            refs(src),
            [
                ("claim", "users".to_owned(), 2, 13),
                ("release", "users".to_owned(), 3, 5),
                ("next", "items".to_owned(), 4, 11),
                ("len", "items".to_owned(), 4, 31),
            ]
        );
    }

    #[test]
    fn skips_comments_other_objects_and_run_time_names() {
        let src = "// data.claim(\"gone\")\nuser.data.claim(\"x\"); mydata.claim(\"y\"); data.claim(name);\n\
                   data.claim(`u${vu_id}`); data.claims(\"z\"); data.random(\"ok\") // data.next(\"no\")\n\
                   data.claim(\"us\" + x);\n";
        assert_eq!(refs(src), [("random", "ok".to_owned(), 3, 44)]);
    }
}
