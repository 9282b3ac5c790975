//! Quoting words for a POSIX shell, so that a command nest shows (the hook's `nest run`, the report's "What was
//! run") can be pasted back into a terminal and mean the same thing (URL credentials aside: those are never shown).

use std::borrow::Cow;

/// Quotes one word for sh: bare when it is plainly safe, else in single quotes.
pub fn quote(word: &str) -> Cow<'_, str> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// Joins words into one command line to show, each quoted as needed, with the credentials of any URL among them
/// redacted word by word (`-H 'http://bob:pa ss@h/'` shows as `-H http://***@h/`).
pub fn join<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> String {
    words.into_iter().map(|w| quote(&nest_http::redact_word(w.as_ref())).into_owned()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(quote("--host"), "--host");
        assert_eq!(quote("http://127.0.0.1:8080/a,b"), "http://127.0.0.1:8080/a,b");
        assert_eq!(quote("error_rate < 1%"), "'error_rate < 1%'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn a_command_line_pastes_back_as_the_same_words() {
        let line = join(["nest", "run", "--threshold", "p95 < 300ms", "-H", "http://h:1/"]);
        assert_eq!(line, "nest run --threshold 'p95 < 300ms' -H http://h:1/");
    }

    #[test]
    fn url_credentials_are_redacted_word_by_word() {
        let line = join(["nest", "-H", "http://bob:pa'ss w@rd@h:1/", "--tags", "a@b", "-H", "http://TOKEN@h/x"]);
        assert_eq!(line, "nest -H 'http://***@h:1/' --tags a@b -H 'http://***@h/x'");
        // What the report stores: the joined line, redacted again as text, is unchanged.
        assert_eq!(nest_http::redact_url(&line), line);
    }
}
